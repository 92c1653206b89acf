"""fastopt.torch_state: torch.optim state dicts into fastopt's numpy optimizers and back.

The first tests build torch-layout state dicts by hand (they run without torch); the
others train with torch.optim and fastopt side by side.
"""

import copy

import numpy as np
import pytest

import fastopt
import fastopt.schedules as S
from fastopt.torch_state import from_torch_state_dict, to_torch_state_dict
from fastopt_testing import torch_reference as R


def _torch_adamw_sd(step=500.0, **group):
    """torch.optim.AdamW's state_dict after `step` steps under OneCycleLR, tensors already
    converted to numpy (the issue's example)."""
    base = {"lr": 0.0123, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01,
            "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
            "differentiable": False, "fused": None, "decoupled_weight_decay": True,
            "initial_lr": 0.0004, "max_lr": 0.01, "min_lr": 4e-8, "params": [0, 1]}
    base.update(group)
    state = {i: {"step": np.float32(step), "exp_avg": np.full(3, 0.1 * (i + 1)),
                 "exp_avg_sq": np.full(3, 0.01)} for i in (0, 1)}
    return {"state": state, "param_groups": [base]}


def test_loading_an_unconverted_torch_state_dict_is_refused():
    opt = fastopt.AdamW([np.zeros(3), np.zeros(3)], lr=S.one_cycle(0.01, 1000))
    with pytest.raises(ValueError, match="from_torch_state_dict"):
        opt.load_state_dict(_torch_adamw_sd())
    assert opt.param_groups[0]["step"] == 0 and not opt.state


def test_an_option_of_the_optimizer_is_not_taken_for_torchs():
    """NAdam's decoupled_weight_decay is a fastopt option too; torch's switches are not."""
    opt = fastopt.NAdam([np.zeros(3)], lr=0.01, decoupled_weight_decay=True)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    opt.load_state_dict(sd)
    sd["param_groups"][0]["foreach"] = None
    with pytest.raises(ValueError, match="'foreach'"):
        opt.load_state_dict(sd)


def test_conversion_keeps_the_schedule_and_resumes_its_step():
    schedule = S.one_cycle(0.01, 1000)
    opt = fastopt.AdamW([np.zeros(3), np.zeros(3)], lr=schedule, l1=0.0)
    sd = from_torch_state_dict(_torch_adamw_sd(), opt)
    opt.load_state_dict(sd)
    group = opt.param_groups[0]
    assert group["step"] == 500 and repr(group["lr"]) == repr(schedule)
    assert not set(group) & set(fastopt.torch_state.TORCH_ONLY_KEYS)
    assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == 0.01
    assert int(opt.state[1]["step"]) == 500 and opt.state[1]["step"].dtype == np.int64
    np.testing.assert_array_equal(opt.state[1]["exp_avg"], np.full(3, 0.2))
    # a float lr takes torch's current value; step= overrides the group step
    plain = fastopt.AdamW([np.zeros(3), np.zeros(3)], lr=0.5)
    plain.load_state_dict(from_torch_state_dict(_torch_adamw_sd(), plain, step=123))
    assert plain.param_groups[0]["lr"] == 0.0123 and plain.param_groups[0]["step"] == 123


def test_group_step_is_the_largest_parameter_step_and_none_entries_drop():
    sd = {"state": {0: {"momentum_buffer": None}, 1: {"momentum_buffer": np.ones(2)}},
          "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 0,
                            "nesterov": False, "maximize": False, "foreach": None,
                            "differentiable": False, "fused": None, "params": [0, 1]}]}
    opt = fastopt.SGD([np.zeros(2), np.zeros(2)], lr=0.1, momentum=0.9)
    out = from_torch_state_dict(sd, opt)
    assert out["state"][0] == {} and out["param_groups"][0]["step"] == 0
    opt.load_state_dict(out)
    assert set(opt.state) == {1}
    adam = _torch_adamw_sd()
    adam["state"][1]["step"] = np.float32(7)
    assert from_torch_state_dict(adam, fastopt.AdamW([np.zeros(3), np.ones(3)]))[
        "param_groups"][0]["step"] == 500


@pytest.mark.parametrize("mutate, target, error, match", [
    (lambda sd: None, lambda: fastopt.Adam([np.zeros(3), np.ones(3)]), ValueError,
     "torch.optim.AdamW state dict, the optimizer is fastopt.Adam"),
    (lambda sd: sd["param_groups"][0].update(momentum=0.9), lambda: fastopt.AdamW(
        [np.zeros(3), np.ones(3)]), ValueError, "'momentum', which fastopt.AdamW does not take"),
    (lambda sd: sd["state"][0].update(step=np.float32(2.5)),
     lambda: fastopt.AdamW([np.zeros(3), np.ones(3)]), ValueError, "whole number"),
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])),
     lambda: fastopt.AdamW([np.zeros(3), np.ones(3)]), ValueError, "2 param groups"),
    (lambda sd: None, lambda: object(), TypeError, "expected a fastopt optimizer"),
])
def test_conversion_errors(mutate, target, error, match):
    sd = _torch_adamw_sd()
    mutate(sd)
    with pytest.raises(error, match=match):
        from_torch_state_dict(sd, target())


# -- with torch ------------------------------------------------------------------------------

_TORCH_THREADS_BEFORE: list[int] = []


def _torch():
    torch = pytest.importorskip("torch")
    if not _TORCH_THREADS_BEFORE:
        _TORCH_THREADS_BEFORE.append(torch.get_num_threads())
    torch.set_num_threads(1)
    return torch


@pytest.fixture(autouse=True, scope="module")
def _torch_threads_restored():
    """torch gets its thread count back after this module: torch and fastopt can share one
    libgomp, whose lower limit (torch.set_num_threads(1)) would otherwise hold every later
    fastopt call to one thread (tests/optim's 1-against-2-thread tests failed after it)."""
    yield
    if _TORCH_THREADS_BEFORE:
        import torch
        torch.set_num_threads(_TORCH_THREADS_BEFORE.pop())


def test_a_torch_adamw_one_cycle_run_continues_in_numpy():
    """The issue's example: torch AdamW + OneCycleLR, checkpointed after 60 of 120 steps,
    resumed with fastopt.AdamW and fastopt's one_cycle: the same as torch all the way."""
    torch = _torch()
    total, cut, dtype = 120, 60, np.float64
    params = R.initial_params(dtype)
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    topt = torch.optim.AdamW(tparams, lr=0.01, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.01, total_steps=total,
                                                cycle_momentum=False)
    ours_params = [p.copy() for p in params]
    for step in range(total):
        grads = R.grads_at(step, dtype)
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g)
        topt.step()
        sched.step()
        if step + 1 == cut:
            saved = copy.deepcopy(topt.state_dict())
            for tp, p in zip(tparams, ours_params):
                p[...] = tp.detach().numpy()
            opt = fastopt.AdamW(ours_params, lr=S.one_cycle(0.01, total), weight_decay=0.05)
            opt.load_state_dict(from_torch_state_dict(saved, opt))
            assert opt.param_groups[0]["step"] == cut
        elif step + 1 > cut:
            opt.step(grads)
    for tp, p in zip(tparams, ours_params):
        np.testing.assert_allclose(p, tp.detach().numpy(), **R.TOL[dtype])


NUMPY_CASES = [
    (fastopt.SGD, dict(lr=S.step_decay(0.1, 3, 0.5), momentum=0.9, dampening=0.1)),
    (fastopt.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.2)),
    (fastopt.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
    (fastopt.Adam, dict(lr=S.cosine(0.01, 20), amsgrad=True, weight_decay=0.1)),
    (fastopt.AdamW, dict(lr=0.01, weight_decay=0.1)),
    (fastopt.Adadelta, dict(lr=1.0, rho=0.8)),
    (fastopt.NAdam, dict(lr=0.01, momentum_decay=0.01, decoupled_weight_decay=True,
                         weight_decay=0.1)),
]


@pytest.mark.parametrize("cls, options", NUMPY_CASES, ids=[c.__name__ for c, _ in NUMPY_CASES])
def test_numpy_state_continues_in_torch_and_comes_back(cls, options):
    torch = _torch()
    dtype = np.float64
    before = torch.get_default_dtype()  # torch keeps NAdam's mu_product in its default dtype
    torch.set_default_dtype(torch.float64)
    try:
        _numpy_state_continues_in_torch_and_comes_back(torch, cls, options, dtype)
    finally:
        torch.set_default_dtype(before)


def _numpy_state_continues_in_torch_and_comes_back(torch, cls, options, dtype):
    params = R.initial_params(dtype)
    opt = cls(params, **options)
    for step in range(5):
        opt.step(R.grads_at(step, dtype))
    sd = to_torch_state_dict(opt)
    lr = options["lr"]
    assert sd["param_groups"][0]["lr"] == (lr(5) if callable(lr) else lr)
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    topt = getattr(torch.optim, cls.__name__)(tparams, foreach=False)
    topt.load_state_dict(sd)
    back = cls([p.copy() for p in params], **options)
    if cls is fastopt.SGD:  # torch's SGD keeps no step count: a schedule needs step=
        with pytest.raises(ValueError, match="pass step="):
            from_torch_state_dict(topt.state_dict(), back)
        back.load_state_dict(from_torch_state_dict(topt.state_dict(), back, step=5))
    else:
        back.load_state_dict(from_torch_state_dict(topt.state_dict(), back))
    assert back.param_groups[0]["step"] == 5
    for i, entry in opt.state.items():
        for name, value in entry.items():
            np.testing.assert_array_equal(back.state[i][name], value)
    for step in range(5, 8):  # torch keeps the lr it was given: compare with a float lr
        grads = R.grads_at(step, dtype)
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g)
        topt.step()
        if not callable(lr):
            opt.step(grads)
    if not callable(lr):
        for tp, p in zip(tparams, params):
            np.testing.assert_allclose(p, tp.detach().numpy(), **R.TOL[dtype])


def test_fastopt_only_options_cannot_go_to_torch():
    _torch()
    opt = fastopt.Adam([np.zeros(2)], l1=0.1)
    with pytest.raises(ValueError, match="l1=0.1"):
        to_torch_state_dict(opt)
    with pytest.raises(ValueError, match="eps_in_sqrt"):
        to_torch_state_dict(fastopt.RMSprop([np.zeros(2)], eps_in_sqrt=True))
