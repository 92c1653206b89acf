"""Schedules for any float option of a param group, not only lr: ``betas=(sched, 0.999)``,
``momentum=sched``, ``weight_decay=sched`` (issue 15; torch's OneCycleLR/CyclicLR cycle the
momentum by default). The comparisons against torch are the OneCycleLR cases of
torch_reference.OPTIM_CASES (tests/optim/test_torch_anchor.py) and its MOMENTUM cases
(tests/test_schedules.py)."""

import io
import pickle

import numpy as np
import pytest

import fastopt
import fastopt.schedules as S

T = 40
M = S.one_cycle_momentum(T)
LR = S.one_cycle(0.05, T)
# (class, options with schedules, the option the schedules replace as (key, at(step)))
CASES = [
    (fastopt.Adam, dict(betas=(M, 0.999)), "betas", lambda t: (M(t), 0.999)),
    (fastopt.AdamW, dict(betas=(M, S.linear(0.999, 1.0, 0.99, T))), "betas",
     lambda t: (M(t), S.linear(0.999, 1.0, 0.99, T)(t))),
    (fastopt.NAdam, dict(betas=(M, 0.999)), "betas", lambda t: (M(t), 0.999)),
    (fastopt.Lion, dict(betas=(M, 0.99)), "betas", lambda t: (M(t), 0.99)),
    (fastopt.SGD, dict(momentum=M), "momentum", M),
    (fastopt.SGD, dict(momentum=M, nesterov=True), "momentum", M),
    (fastopt.RMSprop, dict(momentum=S.cyclic_momentum(0.8, 0.9, 5)), "momentum",
     S.cyclic_momentum(0.8, 0.9, 5)),
    (fastopt.AdamW, dict(weight_decay=S.cosine(0.1, T)), "weight_decay", S.cosine(0.1, T)),
    (fastopt.Adadelta, dict(rho=S.linear(0.9, 1.0, 0.95, T)), "rho",
     lambda t: S.linear(0.9, 1.0, 0.95, T)(t)),
]
IDS = [f"{c.__name__}-{key}-{k}" for k, (c, _, key, _) in enumerate(CASES)]


def _grads(step, dtype):
    rng = np.random.default_rng(step)
    return [rng.standard_normal(4).astype(dtype), rng.standard_normal((2, 3)).astype(dtype)]


def _params(dtype):
    return [np.linspace(-1, 1, 4).astype(dtype), np.linspace(2, 3, 6).reshape(2, 3).astype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, options, key, at", CASES, ids=IDS)
def test_a_scheduled_option_equals_setting_its_value_every_step(cls, options, key, at, dtype):
    """The schedule is evaluated at the group's step, exactly as if the loop wrote the
    option's value into the group before each step (what torch's schedulers do)."""
    ps, ref_ps = _params(dtype), _params(dtype)
    opt = cls([{"params": ps, **options}], lr=LR)
    plain = {k: v for k, v in options.items() if k != key}
    ref = cls([{"params": ref_ps, key: at(0), **plain}], lr=LR)
    for t in range(T + 3):  # past the cycle too
        ref.param_groups[0][key] = at(t)
        opt.step(_grads(t, dtype))
        ref.step(_grads(t, dtype))
    for p, q in zip(ps, ref_ps):
        np.testing.assert_array_equal(p, q)
    for i in ref.state:
        for name in ref.state[i]:
            np.testing.assert_array_equal(opt.state[i][name], ref.state[i][name])
    assert opt.param_groups[0][key] == options[key]  # the group keeps the schedule


def test_only_the_scheduled_group_changes():
    a, b = np.ones(3), np.ones(3)
    opt = fastopt.SGD([{"params": [a], "momentum": M}, {"params": [b]}], lr=0.1, momentum=0.5)
    ref_a, ref_b = np.ones(3), np.ones(3)
    ref = fastopt.SGD([{"params": [ref_a]}, {"params": [ref_b]}], lr=0.1, momentum=0.5)
    for t in range(5):
        ref.param_groups[0]["momentum"] = M(t)
        opt.step([np.full(3, 0.5), np.full(3, 0.5)])
        ref.step([np.full(3, 0.5), np.full(3, 0.5)])
    np.testing.assert_array_equal(a, ref_a)
    np.testing.assert_array_equal(b, ref_b)


def test_a_schedule_set_mid_run_and_removed_again():
    p, q = np.ones(3), np.ones(3)
    opt, ref = fastopt.Adam([p], lr=0.1), fastopt.Adam([q], lr=0.1)
    for t in range(9):
        if t == 3:
            opt.param_groups[0]["betas"] = (M, 0.999)
        if t == 6:
            opt.param_groups[0]["betas"] = (0.9, 0.999)
        ref.param_groups[0]["betas"] = (M(t) if 3 <= t < 6 else 0.9, 0.999)
        opt.step([np.full(3, 0.5)])
        ref.step([np.full(3, 0.5)])
    np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("how", ["pickle", "save_state", "state_dict"])
def test_scheduled_options_resume_bitwise(how):
    def fresh():
        return [np.ones(4), np.zeros(3)]

    ref_ps = fresh()
    ref = fastopt.AdamW(ref_ps, lr=LR, betas=(M, 0.999))
    ps = fresh()
    opt = fastopt.AdamW(ps, lr=LR, betas=(M, 0.999))
    grads = [[np.full(4, 0.1 * t), np.full(3, -0.2)] for t in range(12)]
    for t in range(6):
        ref.step(grads[t])
        opt.step(grads[t])
    if how == "pickle":
        opt = pickle.loads(pickle.dumps(opt))
        ps = [p for g in opt.param_groups for p in g["params"]]
    elif how == "save_state":
        buf = io.BytesIO()
        fastopt.save_state(buf, {"opt": opt.state_dict(), "params": ps})
        buf.seek(0)
        ckpt = fastopt.load_state(buf)
        assert repr(ckpt["opt"]["param_groups"][0]["betas"][0]) == repr(M)  # no pickle, schedule kept
        ps = ckpt["params"]
        opt = fastopt.AdamW(ps, lr=0.0)
        opt.load_state_dict(ckpt["opt"])
    else:
        sd = opt.state_dict()
        ps = [p.copy() for p in ps]
        opt = fastopt.AdamW(ps, lr=0.0)
        opt.load_state_dict(sd)
    assert repr(opt.param_groups[0]["betas"][0]) == repr(M)
    assert opt.param_groups[0]["step"] == 6
    for t in range(6, 12):
        ref.step(grads[t])
        opt.step(grads[t])
    for p, q in zip(ps, ref_ps):
        np.testing.assert_array_equal(p, q)


def test_a_schedule_with_an_invalid_value_is_refused_naming_the_option():
    too_big = S.linear(0.9, 1.0, 1.2, 10)  # beta1 = 0.9 * (1 + 0.02 t) passes 1 at t = 6
    with pytest.raises(ValueError, match=r"^beta1: expected"):
        fastopt.Adam([np.ones(2)], lr=0.1, betas=(S.constant(1.5), 0.999))
    p = np.ones(2)
    opt = fastopt.Adam([p], lr=0.1, betas=(too_big, 0.999))
    while too_big(opt.param_groups[0]["step"]) < 1.0:
        opt.step([np.ones(2)])
    assert opt.param_groups[0]["step"] == 6
    before, state = p.copy(), {k: np.array(v, copy=True) for k, v in opt.state[0].items()}
    with pytest.raises(ValueError, match=r"^beta1: expected"):
        opt.step([np.ones(2)])
    np.testing.assert_array_equal(p, before)
    assert opt.param_groups[0]["step"] == 6
    for k, v in state.items():
        np.testing.assert_array_equal(opt.state[0][k], v)


def test_a_non_schedule_option_still_raises_its_type_error():
    with pytest.raises(TypeError, match=r"^eps: expected"):
        fastopt.Adam([np.ones(2)], lr=0.1, eps="small")
    with pytest.raises(TypeError, match=r"^beta1: expected"):
        fastopt.Adam([np.ones(2)], lr=0.1, betas=("0.9", 0.999))
