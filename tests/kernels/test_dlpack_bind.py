"""StepPlan.bind with DLPack capsules (_dlpack.pxi), what fastopt.torch hands it for new
gradient tensors. numpy exports capsules too (``ndarray.__dlpack__``), so the C checks are
tested here without torch: a fitting capsule binds its memory (the step equals the step
with the array), one that does not fit raises DLPackUnfit naming its position, and the
boundary's overlap rule holds."""

import numpy as np
import pytest

from fastopt import _kernels
from fastopt.kernels import sgd_step

DTYPES = [np.float32, np.float64]


def _exports_versioned_capsules() -> bool:
    """numpy >= 2.1 exports DLPack 1.0 (versioned) capsules; older numpy only the legacy
    ones, which torch also still hands out."""
    try:
        np.zeros(1).__dlpack__(max_version=(1, 0))
    except TypeError:
        return False
    return True


VERSIONED = [False, pytest.param(True, marks=pytest.mark.skipif(
    not _exports_versioned_capsules(), reason="this numpy exports no versioned capsules"))]


def _plan(params):
    options = _kernels.sgd_options(lr=0.5)
    return _kernels.StepPlan([(params, [None], None, None)], [options.state_names]), options


def _step(plan, options, grads, indices=None):
    plan.bind(grads, indices) if indices is not None else plan.bind(grads)
    plan.run(0, options)
    plan.advance()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("versioned", VERSIONED)
def test_a_fitting_capsule_binds_its_memory(dtype, versioned):
    params = [np.ones((3, 4), dtype), np.ones(5, dtype)]
    ref = [p.copy() for p in params]
    grads = [np.arange(12, dtype=dtype).reshape(3, 4), np.linspace(-1, 1, 5).astype(dtype)]
    big = np.arange(40, dtype=dtype)
    grads[1] = big[3:8]  # a view at an offset: the capsule's data (or byte_offset)
    plan, options = _plan(params)
    kwargs = {"max_version": (1, 0)} if versioned else {}
    capsules = [g.__dlpack__(**kwargs) for g in grads]
    _step(plan, options, capsules)
    sgd_step(ref, grads, lr=0.5)
    for p, q in zip(params, ref):
        np.testing.assert_array_equal(p, q)


def test_capsules_and_arrays_mix_and_indices_name_the_gradient():
    params = [np.zeros(3), np.zeros(3)]
    plan, options = _plan(params)
    _step(plan, options, [np.ones(3), np.full(3, 2.0).__dlpack__()], [7, 9])
    np.testing.assert_array_equal(params[1], -1.0)
    with pytest.raises(_kernels.DLPackUnfit, match=r"^grads\[9\]: not of the parameter's "
                                                   r"shape") as err:
        plan.bind([np.ones(3), np.ones(4).__dlpack__()], [7, 9])
    assert err.value.position == 1 and isinstance(err.value, ValueError)


@pytest.mark.parametrize("grad, why", [
    (lambda: np.ones((3, 4), np.float32), "dtype"),
    (lambda: np.ones((4, 3)), "shape"),
    (lambda: np.ones(12), "shape"),
    (lambda: np.ones((3, 8))[:, ::2], "C-contiguous"),
    (lambda: np.ones((4, 3)).T, "C-contiguous"),
    (lambda: np.ones(1, dtype=np.int64).repeat(12).reshape(3, 4), "dtype"),
    (lambda: np.frombuffer(bytearray(8 * 12 + 1), np.float64, 12, offset=1).reshape(3, 4),
     "aligned"),
])
def test_an_unfit_capsule_raises_and_binds_nothing(grad, why):
    params = [np.ones((3, 4))]
    plan, options = _plan(params)
    g = grad()
    with pytest.raises(_kernels.DLPackUnfit, match=rf"^grads\[0\]: not .*{why}"):
        plan.bind([g.__dlpack__()])
    with pytest.raises(RuntimeError, match="no gradients bound"):
        plan.run(0, options)
    np.testing.assert_array_equal(params[0], 1.0)


def test_size_one_dims_may_have_any_stride():
    params = [np.ones((3, 1, 4))]
    plan, options = _plan(params)
    base = np.ones(12)
    g = np.lib.stride_tricks.as_strided(base, (3, 1, 4), (32, 7 * 8, 8))  # dim 1 is 1: its
    _step(plan, options, [g.__dlpack__()])                                # stride is moot
    np.testing.assert_array_equal(params[0], 0.5)


def test_a_capsule_sharing_memory_with_a_written_array_is_refused():
    params = [np.ones(4), np.ones(4)]
    plan, options = _plan(params)
    with pytest.raises(ValueError, match=r"^grads\[1\]: shares memory with a parameter"):
        plan.bind([np.ones(4), params[0].__dlpack__()])


def test_empty_params_take_an_empty_capsule():
    params = [np.ones(0), np.ones(2)]
    plan, options = _plan(params)
    _step(plan, options, [np.ones(0).__dlpack__(), np.ones(2).__dlpack__()])
    np.testing.assert_array_equal(params[1], 0.5)


def test_other_capsules_are_unfit():
    import ctypes

    make = ctypes.pythonapi.PyCapsule_New
    make.restype = ctypes.py_object
    make.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    buf = ctypes.create_string_buffer(64)
    foreign = make(ctypes.addressof(buf), b"something_else", None)
    plan, _ = _plan([np.ones(2)])
    with pytest.raises(_kernels.DLPackUnfit, match="not a DLPack capsule"):
        plan.bind([foreign])
