"""fastopt.torch.Lion: torch has no Lion, so it follows lucidrains' lion_pytorch.Lion (the
paper's reference code): 200 steps against the plain formula (and against lion_pytorch
itself where it is installed), the signature, state and state_dict, bad input."""

import copy
import inspect

import numpy as np
import pytest

import fastopt.schedules as S
from fastopt_testing import torch_reference as R

torch = pytest.importorskip("torch")
import fastopt.torch as ft  # noqa: E402

CASES = {
    "default": dict(lr=1e-3),
    "decay": dict(lr=3e-3, betas=(0.8, 0.95), weight_decay=0.5),
    "decoupled": dict(lr=3e-3, weight_decay=1e-3, decoupled_weight_decay=True),
    "maximize": dict(lr=1e-3, weight_decay=0.1, maximize=True),
}


def plain_lion(steps, dtype, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0,
               decoupled_weight_decay=False, maximize=False, lrs=None, beta1s=None):
    """lion_pytorch's update in numpy, in double, each result rounded to `dtype`:
    ``p *= 1 - lr * wd; p -= lr * sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g`` with
    ``wd = weight_decay / lr0`` when decoupled (lr0: the constructor's lr)."""
    params = [p.astype(np.float64) for p in R.initial_params(dtype)]
    ms = [np.zeros_like(p) for p in params]
    wd = weight_decay / lr if decoupled_weight_decay else weight_decay
    for t in range(steps):
        step_lr = lr if lrs is None else lrs(t)
        beta1 = betas[0] if beta1s is None else beta1s(t)
        for k, g in enumerate(R.grads_at(t, dtype)):
            if g is None:
                continue
            g = -g.astype(np.float64) if maximize else g.astype(np.float64)
            p, m = params[k], ms[k]
            p[...] = (p * (1.0 - step_lr * wd)).astype(dtype)
            c = (beta1 * m + (1.0 - beta1) * g).astype(dtype)
            p[...] = (p - step_lr * np.sign(c)).astype(dtype)
            m[...] = (betas[1] * m + (1.0 - betas[1]) * g).astype(dtype)
    return [p.astype(dtype) for p in params], [{"exp_avg": m.astype(dtype)} for m in ms]


def fastopt_lion(steps, dtype, scheduler=None, **options):
    tparams = [torch.nn.Parameter(torch.from_numpy(p)) for p in R.initial_params(dtype)]
    opt = ft.Lion(tparams, **options)
    sched = scheduler(opt) if scheduler is not None else None
    for t in range(steps):
        for tp, g in zip(tparams, R.grads_at(t, dtype)):
            tp.grad = None if g is None else torch.from_numpy(g)
        opt.step()
        if sched is not None:
            sched.step()
    return ([tp.detach().numpy().copy() for tp in tparams],
            [{k: v.numpy().copy() for k, v in opt.state[tp].items()} for tp in tparams])


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_matches_the_plain_formula_for_200_steps(case, dtype):
    dtype = R.DTYPES[dtype]
    R.assert_same_run(fastopt_lion(R.STEPS, dtype, **CASES[case]),
                      plain_lion(R.STEPS, dtype, **CASES[case]), dtype, case)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_one_cycle_lr_cycles_beta1_as_one_cycle_momentum(dtype):
    """torch's OneCycleLR drives Lion's lr and betas[0] (it has betas): the plain formula
    with fastopt's one_cycle and one_cycle_momentum gives the same run."""
    dtype = R.DTYPES[dtype]
    ours = fastopt_lion(R.STEPS, dtype, lr=1e-3, scheduler=lambda o: torch.optim.lr_scheduler.
                        OneCycleLR(o, max_lr=3e-3, total_steps=R.STEPS))
    ref = plain_lion(R.STEPS, dtype, lr=1e-3, lrs=S.one_cycle(3e-3, R.STEPS),
                     beta1s=S.one_cycle_momentum(R.STEPS))
    R.assert_same_run(ours, ref, dtype, "OneCycleLR")


def test_matches_lion_pytorch_where_installed():
    lion_pytorch = pytest.importorskip("lion_pytorch")
    for options in CASES.values():
        options = {k: v for k, v in options.items() if k != "maximize"}
        runs = []
        for cls in (lion_pytorch.Lion, ft.Lion):
            ps = [torch.nn.Parameter(torch.from_numpy(p)) for p in R.initial_params(np.float64)]
            opt = cls(ps, **options)
            for t in range(50):
                for p, g in zip(ps, R.grads_at(t, np.float64)):
                    p.grad = None if g is None else torch.from_numpy(g)
                opt.step()
            runs.append(([p.detach().numpy().copy() for p in ps],
                         [{k: v.numpy() for k, v in opt.state[p].items()} for p in ps]))
        R.assert_same_run(runs[1], runs[0], np.float64, str(options))


def test_signature_and_state_are_lion_pytorchs():
    params = list(inspect.signature(ft.Lion).parameters.values())
    assert [(p.name, p.default) for p in params[:6]] == [
        ("params", inspect.Parameter.empty), ("lr", 1e-4), ("betas", (0.9, 0.99)),
        ("weight_decay", 0.0), ("use_triton", False), ("decoupled_weight_decay", False)]
    assert params[6].name == "maximize" and params[6].kind == inspect.Parameter.KEYWORD_ONLY
    w = torch.nn.Parameter(torch.ones(3))
    opt = ft.Lion([w])
    assert isinstance(opt, torch.optim.Optimizer)
    w.grad = torch.ones(3)
    opt.step()
    assert set(opt.state[w]) == {"exp_avg"}  # no step count: the update needs none
    assert set(opt.param_groups[0]) == {"params", "lr", "betas", "weight_decay",
                                        "decoupled_weight_decay", "maximize"}


def test_state_dict_round_trip_goes_on_identically():
    def model():
        return [torch.nn.Parameter(torch.from_numpy(p)) for p in R.initial_params(np.float64)]

    def feed(ps, t):
        for p, g in zip(ps, R.grads_at(t, np.float64)):
            p.grad = None if g is None else torch.from_numpy(g)

    ref_ps, ps = model(), model()
    ref, opt = ft.Lion(ref_ps, lr=1e-3, weight_decay=0.1), ft.Lion(ps, lr=1e-3, weight_decay=0.1)
    for t in range(5):
        feed(ref_ps, t)
        feed(ps, t)
        ref.step()
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    other = ft.Lion(ps, lr=0.5)
    other.load_state_dict(saved)
    assert other.param_groups[0]["lr"] == 1e-3
    for t in range(5, 10):
        feed(ref_ps, t)
        feed(ps, t)
        ref.step()
        other.step()
    for p, q in zip(ps, ref_ps):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("options, error, match", [
    (dict(use_triton=True), ValueError, r"^use_triton: "),
    (dict(lr=0.0, weight_decay=0.1, decoupled_weight_decay=True), ValueError, r"^lr: "),
    (dict(betas=(1.5, 0.99)), ValueError, r"^beta1: "),
    (dict(betas=0.9), TypeError, r"^betas: "),
    (dict(weight_decay=-1.0), ValueError, r"^weight_decay: "),
    (dict(decoupled_weight_decay=1), TypeError, r"^decoupled_weight_decay: "),
])
def test_bad_options_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        ft.Lion([torch.nn.Parameter(torch.ones(2))], **options)


def test_lion_pytorch_signature_and_state_dict_where_installed():
    lion_pytorch = pytest.importorskip("lion_pytorch")
    theirs = list(inspect.signature(lion_pytorch.Lion).parameters.values())
    ours = list(inspect.signature(ft.Lion).parameters.values())[:len(theirs)]
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]
    for first, second in ((lion_pytorch.Lion, ft.Lion), (ft.Lion, lion_pytorch.Lion)):
        ref_ps = [torch.nn.Parameter(torch.from_numpy(p)) for p in R.initial_params(np.float64)]
        ps = [torch.nn.Parameter(torch.from_numpy(p)) for p in R.initial_params(np.float64)]
        ref = lion_pytorch.Lion(ref_ps, lr=1e-3, weight_decay=0.1)
        opt = first(ps, lr=1e-3, weight_decay=0.1)
        for t in range(10):
            if t == 5:  # hand over: the other class loads the state dict and goes on
                saved = copy.deepcopy(opt.state_dict())
                opt = second(ps, lr=1e-3, weight_decay=0.1)
                opt.load_state_dict(saved)
            for group in (ref_ps, ps):
                for p, g in zip(group, R.grads_at(t, np.float64)):
                    p.grad = None if g is None else torch.from_numpy(g)
            ref.step()
            opt.step()
        for p, q in zip(ps, ref_ps):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12,
                                       atol=1e-14)
