"""StepPlan.step_again: a step with the pointers of the last bind, for a caller whose
gradients are the very arrays of that bind (fastopt.torch's retained grad views). It runs
only while that bind is the plan's last and bound numpy arrays only, none copied; the
result is the bind-and-run step's, bit for bit."""

import numpy as np
import pytest

from fastopt import _kernels

DTYPES = [np.float32, np.float64]


def _plan(params):
    options = _kernels.adam_options(lr=0.1)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    steps = [np.zeros((), np.int64) for _ in params]
    plan = _kernels.StepPlan([(params, [m, v, None], steps, None)], [options.state_names])
    return plan, options, (m, v, steps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_again_equals_bind_and_run_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in ((3, 4), (7,), ())]
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    ref_params, ref_grads = [p.copy() for p in params], [g.copy() for g in grads]
    plan, options, state = _plan(params)
    ref_plan, _, ref_state = _plan(ref_params)
    assert plan.serial == 0
    assert plan.step(grads, [0], [options])
    assert ref_plan.step(ref_grads, [0], [options])
    serial = plan.serial
    assert serial > 0
    for _ in range(3):
        for g in grads + ref_grads:
            g *= -0.5  # the same arrays, new values: the kernel reads them again
        assert plan.step_again(grads, serial, [0], [options])
        assert plan.serial == serial  # no bind
        assert ref_plan.step(ref_grads, [0], [options])
    for p, q in zip(params, ref_params):
        np.testing.assert_array_equal(p, q)
    for a, b in zip(state, ref_state):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert int(state[2][0]) == 4


def test_step_again_refuses_after_another_bind_a_copy_a_capsule_or_a_failed_bind():
    params = [np.ones(6, np.float32), np.ones(3, np.float32)]
    plan, options, _ = _plan(params)
    other, _, _ = _plan([np.ones(6, np.float32), np.ones(3, np.float32)])
    grads = [np.ones(6, np.float32), np.ones(3, np.float32)]
    before = [p.copy() for p in params]

    def refused(serial):
        snapshot = [p.copy() for p in params]
        assert not plan.step_again(grads, serial, [0], [options])
        assert all(np.array_equal(p, s) for p, s in zip(params, snapshot))

    refused(0)                              # never bound
    assert plan.step(grads, [0], [options])
    serial = plan.serial
    assert other.step(grads, [0], [options])
    assert other.serial != serial           # serials are unique across plans
    refused(other.serial)
    refused(serial + 1)
    assert plan.step_again(grads, serial, [0], [options])
    assert not plan.step_again(grads[:1], serial, [0], [options])  # not one per param
    # a bind since: the old serial is refused, the new one runs
    assert plan.step(grads, [0], [options])
    refused(serial)
    serial = plan.serial
    assert plan.step_again(grads, serial, [0], [options])
    # a bind that copied a gradient (strided): its copy is gone after the step
    strided = [np.ones(12, np.float32)[::2], grads[1]]
    assert plan.step(strided, [0], [options])
    refused(plan.serial)
    # a bind of a DLPack capsule: read for its step only
    assert plan.step([grads[0].__dlpack__(), grads[1]], [0], [options])
    refused(plan.serial)
    # a bind that failed, or found a gradient missing
    with pytest.raises(ValueError):
        plan.bind([np.ones(5, np.float32), grads[1]])
    refused(plan.serial)
    assert not plan.bind([None, grads[1]])
    refused(plan.serial)
    assert not all(np.array_equal(p, b) for p, b in zip(params, before))
