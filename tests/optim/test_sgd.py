"""fastopt.SGD: param groups, schedules, state_dict, and agreement with the kernel/torch."""

import pickle

import numpy as np
import pytest

import fastopt
from fastopt.kernels import sgd_step
from fastopt_testing.arrays import snapshot


def make_problem(rng, dtype, shapes=((3, 4), (5,), (2, 2, 2))):
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(20)]
    return params, grads


def test_class_matches_functional_kernel(dtype, rng):
    params, grads = make_problem(rng, dtype)
    ref = [p.copy() for p in params]
    bufs = [np.zeros_like(p) for p in params]
    opt = fastopt.SGD(params, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)
    for k, g in enumerate(grads):
        assert opt.step(g) is True
        sgd_step(ref, g, bufs, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3,
                 first_step=k == 0)
    for p, r in zip(params, ref):
        assert p.tobytes() == r.tobytes()
    assert opt.param_groups[0]["step"] == len(grads)


def test_param_groups_have_their_own_options(rng):
    a, b = np.ones(4), np.ones(4)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.step([np.ones(4), np.ones(4)])
    np.testing.assert_allclose(a, 0.9)
    np.testing.assert_allclose(b, 0.5)


def test_schedule_is_called_with_the_group_step_count():
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.1 * (step + 1)

    p = np.zeros(2)
    opt = fastopt.SGD([p], lr=schedule)
    for _ in range(3):
        opt.step([np.ones(2)])
    # one call validates at construction (step 0), then steps 0, 1, 2
    assert seen[-3:] == [0, 1, 2]
    np.testing.assert_allclose(p, -(0.1 + 0.2 + 0.3))


def test_none_gradient_skips_that_parameter():
    a, b = np.ones(3), np.ones(3)
    opt = fastopt.SGD([a, b], lr=1.0, momentum=0.5)
    opt.step([np.ones(3), None])
    assert (b == 1).all() and (a == 0).all()
    assert 1 not in opt.state


@pytest.mark.parametrize("round_trip", ["direct", "pickle", "savez"])
def test_resume_from_state_dict_is_bitwise_identical(round_trip, rng, tmp_path, dtype):
    params, grads = make_problem(rng, dtype)
    opts = dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-4)
    full = [p.copy() for p in params]
    opt_full = fastopt.SGD(full, **opts)
    for g in grads:
        opt_full.step(g)

    half = [p.copy() for p in params]
    opt_half = fastopt.SGD(half, **opts)
    for g in grads[:7]:
        opt_half.step(g)
    sd = opt_half.state_dict()
    if round_trip == "pickle":
        sd = pickle.loads(pickle.dumps(sd))
    elif round_trip == "savez":
        path = tmp_path / "state.npz"
        np.savez(path, **{f"buf{i}": s["momentum_buffer"] for i, s in sd["state"].items()})
        loaded = np.load(path)
        sd["state"] = {i: {"momentum_buffer": loaded[f"buf{i}"]} for i in sd["state"]}
    resumed = [p.copy() for p in half]
    opt_resumed = fastopt.SGD(resumed, lr=1.0)  # options come from the state_dict
    opt_resumed.load_state_dict(sd)
    for g in grads[7:]:
        opt_resumed.step(g)
    for a, b in zip(full, resumed):
        assert a.tobytes() == b.tobytes()


def test_state_dict_is_a_copy():
    p = np.ones(3)
    opt = fastopt.SGD([p], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    opt.step([np.ones(3)])
    assert not np.shares_memory(sd["state"][0]["momentum_buffer"],
                                opt.state[0]["momentum_buffer"])
    assert sd["param_groups"][0]["step"] == 1


def test_load_state_dict_rejects_other_shapes_and_changes_nothing():
    opt_a = fastopt.SGD([np.ones(3), np.ones(4)], lr=0.1, momentum=0.9)
    opt_a.step([np.ones(3), np.ones(4)])
    sd = opt_a.state_dict()
    opt_b = fastopt.SGD([np.ones(3), np.ones(5)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        opt_b.load_state_dict(sd)
    assert opt_b.state == {} and opt_b.param_groups[0]["step"] == 0
    opt_c = fastopt.SGD([np.ones(3)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="parameters"):
        opt_c.load_state_dict(sd)
    opt_d = fastopt.SGD([{"params": [np.ones(3)]}, {"params": [np.ones(4)]}], lr=0.1)
    with pytest.raises(ValueError, match="param groups"):
        opt_d.load_state_dict(sd)
    sd32 = opt_a.state_dict()
    sd32["state"][0]["momentum_buffer"] = sd32["state"][0]["momentum_buffer"].astype(np.float32)
    with pytest.raises(ValueError, match="dtype"):
        fastopt.SGD([np.ones(3), np.ones(4)], lr=0.1).load_state_dict(sd32)


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=-0.1), "lr"),
    (dict(lr=0.1, momentum=-1.0), "momentum"),
    (dict(lr=0.1, nesterov=True), "nesterov"),
    (dict(lr=0.1, weight_decay=float("nan")), "weight_decay"),
])
def test_bad_options_raise_at_construction(kwargs, words):
    with pytest.raises(ValueError, match=words):
        fastopt.SGD([np.ones(3)], **kwargs)


def test_bad_params_raise_at_construction():
    with pytest.raises(TypeError, match="single array"):
        fastopt.SGD(np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        fastopt.SGD([])
    with pytest.raises(TypeError, match="float32 or float64"):
        fastopt.SGD([np.ones(3, dtype=np.int32)])
    p = np.ones(3)
    with pytest.raises(ValueError, match="more than one group"):
        fastopt.SGD([{"params": [p]}, {"params": [p]}])
    big = np.ones(6)
    with pytest.raises(ValueError, match="shares memory"):
        fastopt.SGD([big[:4], big[2:]])


def test_bad_gradients_raise_and_change_nothing(rng):
    params = [rng.standard_normal(3), rng.standard_normal(4)]
    opt = fastopt.SGD(params, lr=0.1, momentum=0.9)
    before = snapshot(params)
    with pytest.raises(ValueError, match="expected 2 gradients"):
        opt.step([np.ones(3)])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.ones(3), np.ones(5)])
    with pytest.raises(TypeError, match="dtype"):
        opt.step([np.ones(3), np.ones(4, np.float32)])
    assert snapshot(params) == before
    assert opt.state == {} and opt.param_groups[0]["step"] == 0
    # the first real step still initialises the buffers to the gradient (torch semantics)
    opt.step([np.ones(3), np.ones(4)])
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], np.ones(3))


def test_matches_torch_sgd(rng, dtype):
    torch = pytest.importorskip("torch")
    params, grads = make_problem(rng, dtype)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opts = dict(lr=0.03, momentum=0.7, dampening=0.2, weight_decay=1e-3, maximize=True)
    topt = torch.optim.SGD(tparams, **opts)
    opt = fastopt.SGD(params, **opts)
    for g in grads:
        for t, gi in zip(tparams, g):
            t.grad = torch.tensor(gi)
        topt.step()
        opt.step(g)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=rtol, atol=1e-7)
