"""fastopt.torch: torch.optim drop-ins (skipped without torch; test_torch_import.py checks
the message then).

The comparisons run 200 steps of every case of torch_reference.py (every optimizer and
option, two param groups, LR schedulers including OneCycleLR cycling betas/momentum, a
tensor without a gradient now and then) against torch.optim with foreach=False and, where
torch has one, its fused CPU kernel, within the tolerances of tests/optim/test_torch_anchor.py.
"""

import copy
import gc
import inspect
import pickle
import weakref

import numpy as np
import pytest

from fastopt_testing import torch_reference as R

torch = pytest.importorskip("torch")
import fastopt.torch as ft  # noqa: E402

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "NAdam"]
# every torch.optim class fastopt.torch has (Lion, which torch lacks: test_lion.py)
RUNS = [(c, v, d) for c in R.OPTIM_CASES if c.name in NAMES
        for v in R.variants_of(c) for d in R.DTYPES]


def _params(n=3, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(4, 5, generator=g, dtype=dtype)) for _ in range(n)]


def _set_grads(params, step, seed=1):
    g = torch.Generator().manual_seed(seed * 1000 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


def _state(opt, params):
    return [{k: v.detach().clone() for k, v in opt.state[p].items()} for p in params]


def _assert_equal_runs(a_params, b_params, a_opt, b_opt, tol=None):
    tol = tol or dict(rtol=1e-6, atol=1e-7)
    for p, q in zip(a_params, b_params):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), **tol)
    sa, sb = a_opt.state_dict()["state"], b_opt.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].keys() == sb[k].keys()
        for name in sa[k]:
            np.testing.assert_allclose(sa[k][name].numpy(), sb[k][name].numpy(), **tol)


# -- 200 steps against torch.optim -------------------------------------------------------------

@pytest.mark.parametrize("case, variant, dtype", RUNS,
                         ids=[f"{c.id}-{v}-{d}" for c, v, d in RUNS])
def test_matches_torch_for_200_steps(case, variant, dtype):
    dtype = R.DTYPES[dtype]
    R.assert_same_run(R.fastopt_torch_run(case, variant, dtype),
                      R.torch_run(case, variant, dtype), dtype, case.id)


def test_adagrad_ignores_a_groups_initial_accumulator_value_as_torch_does():
    def run(module):
        ps = _params(2, torch.float64)
        opt = module.Adagrad([{"params": ps[:1]},
                              {"params": ps[1:], "initial_accumulator_value": 5.0}],
                             lr=0.1, initial_accumulator_value=0.5)
        late = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt.add_param_group({"params": [late], "initial_accumulator_value": 7.0})
        for step in range(3):
            _set_grads(ps, step)
            late.grad = torch.full((3,), 0.5, dtype=torch.float64)
            opt.step()
        return ps + [late], opt

    (pa, oa), (pb, ob) = run(torch.optim), run(ft)
    _assert_equal_runs(pa, pb, oa, ob, dict(rtol=1e-12, atol=1e-14))


LOWPREC_OPTIONS = [("state_dtype", inspect.Parameter.KEYWORD_ONLY, None),
                   ("min_lowprec_size", inspect.Parameter.KEYWORD_ONLY, 4096),
                   ("state_seed", inspect.Parameter.KEYWORD_ONLY, 0)]


# -- the torch.optim surface ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_signature_and_defaults_are_torchs(name):
    ours, theirs = getattr(ft, name), getattr(torch.optim, name)
    assert issubclass(ours, torch.optim.Optimizer)
    sig_a, sig_b = inspect.signature(ours), inspect.signature(theirs)
    # torch's parameters, then fastopt's keyword-only low-precision state options
    assert [(p.name, p.kind, p.default) for p in sig_a.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in sig_b.parameters.values()] + LOWPREC_OPTIONS
    ps = _params(1)
    assert ours(ps).defaults == theirs(ps).defaults
    assert list(ours(ps).param_groups[0]) == list(theirs(ps).param_groups[0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["torch->fastopt", "fastopt->torch"])
def test_state_dict_travels_both_ways_and_training_goes_on(name, direction):
    """Train 5 steps with one, load its state_dict into the other, train 5 more: the same
    as 10 steps with the first."""
    first, second = (torch.optim, ft) if direction == "torch->fastopt" else (ft, torch.optim)
    options = dict(lr=0.05)
    if name in ("SGD", "RMSprop"):
        options["momentum"] = 0.9
    ref_params = _params(3, torch.float64)
    ref = getattr(first, name)(ref_params, **options)
    params = _params(3, torch.float64)
    opt = getattr(first, name)(params, **options)
    for step in range(5):
        _set_grads(ref_params, step)
        _set_grads(params, step)
        ref.step()
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    for entry in saved["state"].values():  # torch's format: float steps (and mu_product)
        for scalar in ("step", "mu_product"):
            if scalar in entry:
                assert entry[scalar].dtype == torch.float32 and entry[scalar].dim() == 0
    other = getattr(second, name)(params, **options)
    other.load_state_dict(saved)
    for step in range(5, 10):
        _set_grads(ref_params, step)
        _set_grads(params, step)
        ref.step()
        other.step()
    # torch keeps NAdam's mu_product in float32 (its default dtype) also for float64 params,
    # fastopt in double: after the handover the two runs differ in mu_product's rounding
    # (measured: params 1e-10 relative, mu_product as float32 in the state dict ~1 ulp)
    tol = dict(rtol=5e-7, atol=1e-12) if name == "NAdam" else dict(rtol=1e-12, atol=1e-14)
    _assert_equal_runs(ref_params, params, ref, other, tol)


def test_state_dict_step_format_follows_torch():
    ps = _params(1)
    for fused in (None, True):
        ours = ft.Adam(ps, fused=fused)
        theirs = torch.optim.Adam(_params(1), fused=fused)
        for opt, params in ((ours, ps), (theirs, theirs.param_groups[0]["params"])):
            _set_grads(params, 0)
            opt.step()
        a, b = ours.state_dict()["state"][0]["step"], theirs.state_dict()["state"][0]["step"]
        assert (a.dtype, a.shape, float(a)) == (b.dtype, b.shape, float(b))
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        opt = ft.Adam(ps)
        _set_grads(ps, 0)
        opt.step()
        assert opt.state_dict()["state"][0]["step"].dtype == torch.float64
    finally:
        torch.set_default_dtype(before)
    # the live counter is an int64 tensor the kernel increments
    assert opt.state[ps[0]]["step"].dtype == torch.int64


@pytest.mark.parametrize("name", NAMES)
def test_step_closure_zero_grad_and_hooks(name):
    ps = _params(2)
    opt = getattr(ft, name)(ps, lr=0.01)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    h2 = opt.register_step_post_hook(lambda o, a, k: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = sum((p ** 2).sum() for p in ps)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.detach()) > 0 and calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    opt.step(closure)
    assert calls == ["pre", "post"]
    from torch.optim.optimizer import register_optimizer_step_post_hook

    g = register_optimizer_step_post_hook(lambda o, a, k: calls.append("g"))
    try:
        opt.step(closure)
    finally:
        g.remove()
    assert calls[-1] == "g"
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    closure()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ps)


def test_params_and_state_are_updated_in_place_without_copies():
    ps = _params(3)
    opt = ft.Adam(ps, lr=0.1)
    ptrs = [p.data_ptr() for p in ps]
    _set_grads(ps, 0)
    opt.step()
    state_ptrs = {k: t.data_ptr() for k, t in opt.state[ps[0]].items()}
    for step in range(1, 4):
        _set_grads(ps, step)
        opt.step()
    assert [p.data_ptr() for p in ps] == ptrs
    assert {k: t.data_ptr() for k, t in opt.state[ps[0]].items()} == state_ptrs
    assert int(opt.state[ps[0]]["step"]) == 4


@pytest.mark.parametrize("name", ["Adam", "Adagrad"])
def test_new_state_is_packed_each_tensor_aligned_and_pickled_alone(name):
    # state created in one step (Adagrad: at construction) lies side by side, in order,
    # each tensor on a 64-byte boundary (torch's alignment); each has its own storage, so
    # that pickling one writes its own bytes only
    shapes = [(3,), (4, 5), (), (17,)]
    ps = [torch.nn.Parameter(torch.ones(s)) for s in shapes]
    opt = getattr(ft, name)(ps, lr=0.1)
    for p in ps:
        p.grad = torch.ones(p.shape)
    opt.step()
    key = "exp_avg" if name == "Adam" else "sum"
    ptrs = [opt.state[p][key].data_ptr() for p in ps]
    assert all(ptr % 64 == 0 for ptr in ptrs)
    gaps = [b - a for a, b in zip(ptrs, ptrs[1:])]
    assert gaps == [64, 128, 64]  # 12, 80, 4 bytes, each rounded up to 64
    steps = [opt.state[p]["step"].data_ptr() for p in ps]
    assert [b - a for a, b in zip(steps, steps[1:])] == [8, 8, 8]
    t = opt.state[ps[1]][key]
    assert t.untyped_storage().nbytes() == t.nbytes == 80
    assert len(pickle.dumps(t)) < 2000
    torch.testing.assert_close(pickle.loads(pickle.dumps(t)), t)


def test_params_without_grad_are_skipped():
    ps = _params(3)
    opt = ft.Adam(ps, lr=0.1)
    _set_grads(ps, 0)
    ps[1].grad = None
    before = ps[1].detach().clone()
    opt.step()
    assert torch.equal(ps[1].detach(), before) and len(opt.state[ps[1]]) == 0
    _set_grads(ps, 1)
    ps[0].grad = None
    opt.step()
    assert [int(opt.state[p]["step"]) for p in ps] == [1, 1, 2]
    for p in ps:
        p.grad = None
    opt.step()  # nothing to do
    assert [int(opt.state[p]["step"]) for p in ps] == [1, 1, 2]


def test_equal_groups_share_one_call_per_dtype():
    ps = _params(4)
    opt = ft.AdamW([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.01)
    _set_grads(ps, 0)
    opt.step()
    opt.step()
    plans = list(opt._fo_layout.plans.values())
    assert len(plans[-1][1]) == 1               # one unit: the two groups have equal options
    opt.param_groups[1]["weight_decay"] = 0.0  # now they differ: two units
    opt.step()
    assert [len(e[1]) for e in opt._fo_layout.plans.values()][-1] == 2


def test_lr_scheduler_and_tensor_lr():
    ps, qs = _params(2), _params(2)
    ours = ft.SGD(ps, lr=torch.tensor(0.1), momentum=0.9)
    theirs = torch.optim.SGD(qs, lr=torch.tensor(0.1), momentum=0.9)
    sa = torch.optim.lr_scheduler.StepLR(ours, 2, 0.5)
    sb = torch.optim.lr_scheduler.StepLR(theirs, 2, 0.5)
    for step in range(6):
        _set_grads(ps, step)
        _set_grads(qs, step)
        ours.step()
        theirs.step()
        sa.step()
        sb.step()
    _assert_equal_runs(ps, qs, ours, theirs)


def test_add_param_group_mid_run():
    ps = _params(3)
    opt = ft.RMSprop(ps[:2], lr=0.01, momentum=0.5)
    _set_grads(ps, 0)
    opt.step()
    opt.add_param_group({"params": ps[2:], "lr": 0.001, "centered": True})
    _set_grads(ps, 1)
    opt.step()
    assert int(opt.state[ps[2]]["step"]) == 1 and "grad_avg" in opt.state[ps[2]]
    assert int(opt.state[ps[0]]["step"]) == 2 and "grad_avg" not in opt.state[ps[0]]


def test_grad_views_are_reused_and_transient_grads_not_retained():
    ps = _params(2)
    opt = ft.Adam(ps)
    _set_grads(ps, 0)
    opt.step()
    opt.step()  # the same grad tensors as the step before: their views are retained
    lay = opt._fo_layout
    assert lay.srcs[0] is ps[0].grad
    opt.zero_grad()  # set_to_none drops them
    assert all(v is None for v in lay.views)
    # new grad tensors every step (model.zero_grad() style): none outlives its step
    refs = []
    for step in range(3):
        _set_grads(ps, step)
        refs.append(weakref.ref(ps[0].grad))
        opt.step()
        for p in ps:
            p.grad = None
    gc.collect()
    assert all(r() is None for r in refs)


def test_after_many_new_grads_no_weak_reference_is_made_and_a_kept_grad_is_retained_again():
    # new grad tensors step after step: after 8 steps a slot stops making a weak reference
    # to each (it keeps the last one's address); a grad kept from then on is retained
    # again, one step later than at the start
    ps = _params(2)
    opt = ft.Adam(ps)
    kept = [[torch.randn(4, 5) for _ in ps] for _ in range(3)]  # alive: other addresses
    for step in range(12):
        for p, g in zip(ps, kept[step % 3]):
            p.grad = g
        opt.step()
    lay = opt._fo_layout
    assert all(w is None for w in lay.weak) and all(v is None for v in lay.views)
    for _ in range(3):  # the same grad tensors now (zero_grad(set_to_none=False) style)
        opt.step()
    assert all(src is p.grad for src, p in zip(lay.srcs, ps))
    assert int(opt.state[ps[0]]["step"]) == 15


def test_non_contiguous_grad_is_copied_and_matches():
    ps, qs = _params(1), _params(1)
    ours, theirs = ft.Adam(ps), torch.optim.Adam(qs, foreach=False)
    for step in range(3):
        g = torch.randn(5, 4, generator=torch.Generator().manual_seed(step)).t()
        assert not g.is_contiguous()
        ps[0].grad, qs[0].grad = g, g.clone()
        ours.step()
        theirs.step()
    _assert_equal_runs(ps, qs, ours, theirs)


def test_replaced_param_storage_and_state_are_followed():
    ps = _params(2)
    opt = ft.SGD(ps, lr=0.1, momentum=0.9)
    _set_grads(ps, 0)
    opt.step()
    buf0 = opt.state[ps[0]]["momentum_buffer"].clone()
    p1 = ps[1].detach().clone()
    ps[0].data = torch.zeros(4, 5)                               # a new storage
    opt.state[ps[1]]["momentum_buffer"] = torch.zeros(4, 5)      # a new state tensor
    for p in ps:
        p.grad = torch.ones(4, 5)
    opt.step()
    torch.testing.assert_close(ps[0].detach(), -0.1 * (0.9 * buf0 + 1))
    torch.testing.assert_close(opt.state[ps[1]]["momentum_buffer"], torch.ones(4, 5))
    torch.testing.assert_close(ps[1].detach(), p1 - 0.1)


def test_pickle_and_deepcopy_keep_stepping():
    ps = _params(2)
    opt = ft.AdamW(ps, lr=0.01)
    _set_grads(ps, 0)
    opt.step()
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert isinstance(clone, ft.AdamW)
        cps = [p for g in clone.param_groups for p in g["params"]]
        _set_grads(cps, 1)
        clone.step()
        assert int(clone.state[cps[0]]["step"]) == 2
    assert int(opt.state[ps[0]]["step"]) == 1


# -- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, error, match", [
    (lambda: torch.zeros(3, device="meta", requires_grad=True), ValueError, "CPU"),
    (lambda: torch.zeros(3, dtype=torch.complex64, requires_grad=True), TypeError, "complex"),
    (lambda: torch.zeros(3, dtype=torch.float16, requires_grad=True), TypeError, "float16"),
    (lambda: torch.zeros(4, 3).t().requires_grad_(), ValueError, "contiguous"),
    (lambda: torch.zeros(3, 3).to_sparse().requires_grad_(), ValueError, "sparse"),
])
def test_unsupported_params_are_refused(bad, error, match):
    with pytest.raises(error, match=match):
        ft.Adam([torch.nn.Parameter(torch.zeros(2)), bad()])
    opt = ft.Adam([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(error, match=r"param_groups\[1\]\['params'\]\[0\]"):
        opt.add_param_group({"params": [bad()]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("options, error, match", [
    (dict(differentiable=True), ValueError, "differentiable"),
    (dict(capturable=True), ValueError, "capturable"),
    (dict(fused=True, foreach=True), RuntimeError, "fused"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(betas=(1.5, 0.9)), ValueError, "beta1"),
])
def test_unsupported_options_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        ft.Adam(_params(1), **options)


def test_bad_grads_raise_and_change_nothing():
    ps = _params(2)
    opt = ft.SGD(ps, lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in ps]
    ps[0].grad = torch.ones(4, 5)
    ps[1].grad_dtype = None  # torch refuses a grad of another dtype unless told not to
    ps[1].grad = torch.ones(4, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[1\]\.grad: .*float32"):
        opt.step()
    ps[1].grad = torch.ones(4, 5).to_sparse()
    for _ in range(2):  # the second time, the same grad tensor again
        with pytest.raises(RuntimeError, match="sparse"):
            opt.step()
    assert all(torch.equal(p.detach(), b) for p, b in zip(ps, before))
    assert len(opt.state[ps[0]]) == 0  # the first step's buffers were not kept
    ps[1].grad = torch.ones(4, 5)
    opt.step()  # and the first successful step initialises the buffers to the gradient
    assert torch.equal(opt.state[ps[0]]["momentum_buffer"], torch.ones(4, 5))


def test_bad_state_dict_raises_and_changes_nothing():
    ps = _params(2)
    opt = ft.Adam(ps)
    _set_grads(ps, 0)
    opt.step()
    good = copy.deepcopy(opt.state_dict())
    for mutate, match in [
        (lambda sd: sd["state"][0].__setitem__("exp_avg", torch.zeros(3)), "shape"),
        (lambda sd: sd["state"][0].__setitem__("step", torch.tensor(1.5)), "whole number"),
        (lambda sd: sd["param_groups"][0].__setitem__("differentiable", True), "differentiable"),
        (lambda sd: sd["param_groups"][0].__setitem__("lr", -2.0), "lr"),
    ]:
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises((ValueError, TypeError), match=match):
            opt.load_state_dict(bad)
        assert int(opt.state[ps[0]]["step"]) == 1
        assert opt.param_groups[0]["lr"] == 1e-3
    _set_grads(ps, 1)
    opt.step()
    assert int(opt.state[ps[0]]["step"]) == 2


def test_loaded_state_requiring_grad_or_strided_is_made_usable():
    ps = _params(1)
    opt = ft.Adam(ps)
    _set_grads(ps, 0)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][0]["exp_avg"] = sd["state"][0]["exp_avg"].t().contiguous().t().requires_grad_()
    opt.load_state_dict(sd)
    t = opt.state[ps[0]]["exp_avg"]
    assert t.is_contiguous() and not t.requires_grad
    opt.step()


def test_state_dict_of_an_older_torch_gets_the_missing_options():
    ps = _params(1)
    opt = ft.Adam(ps, lr=0.01)
    _set_grads(ps, 0)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    for key in ("decoupled_weight_decay", "foreach", "fused", "capturable", "differentiable"):
        del sd["param_groups"][0][key]
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is False
    opt.step()
    assert int(opt.state[ps[0]]["step"]) == 2


# -- new gradient tensors are read through DLPack capsules (StepPlan.bind checks them) -------

def _one_step_each(make_grad, cls="Adam"):
    """One step of fastopt.torch and of torch.optim with the gradient make_grad(p) gives."""
    ps, qs = _params(1, torch.float64), _params(1, torch.float64)
    ours, theirs = getattr(ft, cls)(ps), getattr(torch.optim, cls)(qs, foreach=False)
    for step in range(3):
        g = make_grad(step)
        ps[0].grad, qs[0].grad = g, g.detach().clone().resolve_neg()
        ours.step()
        theirs.step()
    _assert_equal_runs(ps, qs, ours, theirs, dict(rtol=1e-14, atol=1e-15))


def _randn(step, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(step),
                       dtype=torch.float64)


@pytest.mark.parametrize("kind", ["negative view", "offset view", "requires grad",
                                  "transposed", "expanded"])
def test_new_gradients_of_every_layout_give_torchs_result(kind):
    make = {
        "negative view": lambda s: torch._neg_view(_randn(s, 4, 5)),
        "offset view": lambda s: _randn(s, 30)[7:27].view(4, 5),  # byte_offset in the capsule
        "requires grad": lambda s: _randn(s, 4, 5).requires_grad_(),
        "transposed": lambda s: _randn(s, 5, 4).t(),               # strided: copied
        "expanded": lambda s: _randn(s, 1, 5).expand(4, 5),        # stride 0: copied
    }[kind]
    _one_step_each(make)


def test_new_gradients_are_bound_as_tensors_through_torchs_exchange_api():
    # torch >= 2.10 exports Tensor.__dlpack_c_exchange_api__: StepPlan.bind then reads a
    # new grad tensor itself (no capsule) and checks it as it checks a capsule
    from fastopt import _kernels
    from fastopt.torch import _base

    if getattr(torch.Tensor, "__dlpack_c_exchange_api__", None) is None:
        pytest.skip("this torch has no DLPack C exchange API")
    assert _base._to_dlpack is None  # gather hands the tensors to bind
    p = np.zeros((4, 5), np.float32)
    plan = _kernels.StepPlan([([p], [], None, None)])
    g = torch.ones(4, 5)
    assert plan.bind([g])
    plan.release()
    for bad, why in [(torch.ones(5, 4).t(), "C-contiguous"), (torch.ones(4, 4), "shape"),
                     (torch.ones(4, 5, dtype=torch.float64), "dtype"),
                     (torch._neg_view(torch.ones(4, 5)), "negative"),
                     (torch.ones(4, 5).to_sparse(), "memory")]:
        with pytest.raises(_kernels.DLPackUnfit, match=why):
            plan.bind([bad])
    with pytest.raises(TypeError, match=r"grads\[0\]"):  # other objects: the array checks
        plan.bind([[1.0] * 20])


def test_a_gradient_sharing_memory_with_a_param_is_refused():
    ps = _params(2)
    opt = ft.SGD(ps, lr=0.1)
    ps[0].grad = torch.ones(4, 5)
    ps[1].grad = ps[0].detach()  # the gradient of params[1] is params[0]'s memory
    before = [p.detach().clone() for p in ps]
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\]\.grad: shares "
                                         r"memory"):
        opt.step()
    assert all(torch.equal(p.detach(), b) for p, b in zip(ps, before))


def test_a_retained_gradient_whose_storage_is_replaced_is_read_again():
    ps, qs = _params(1), _params(1)
    ours, theirs = ft.SGD(ps, lr=0.1), torch.optim.SGD(qs, lr=0.1)
    for p in (ps[0], qs[0]):
        p.grad = torch.ones(4, 5)
    for opt in (ours, theirs):
        opt.step()
        opt.step()  # the same grad tensor twice: fastopt.torch retains what it read
    for p in (ps[0], qs[0]):
        p.grad.data = torch.full((4, 5), 3.0)  # same tensor object, new storage
    ours.step()
    theirs.step()
    _assert_equal_runs(ps, qs, ours, theirs)


def test_a_retained_negative_view_gradient_is_not_a_stale_copy():
    ps, qs = _params(1), _params(1)
    ours, theirs = ft.SGD(ps, lr=0.1), torch.optim.SGD(qs, lr=0.1)
    base = torch.ones(4, 5)
    ps[0].grad = torch._neg_view(base)
    qs[0].grad = -torch.ones(4, 5)
    for _ in range(3):
        base.add_(1.0)  # the same gradient tensor, its values changed in place
        qs[0].grad.sub_(1.0)
        ours.step()
        theirs.step()
    _assert_equal_runs(ps, qs, ours, theirs)


def test_steps_without_a_new_bind_follow_every_change_of_the_grads():
    from fastopt import _kernels

    # The same grad tensors step after step (zero_grad(set_to_none=False) style): once a
    # step has bound the retained views of every grad, the next runs without binding them
    # again (StepPlan.step_again). Every change between steps must be followed as when
    # binding at every step (bit for bit) and as torch.optim.
    ps, rs, qs = (_params(3, torch.float64) for _ in range(3))  # (float32 drifts from torch)
    ours, ref = ft.Adam(ps, lr=0.01), ft.Adam(rs, lr=0.01)
    theirs = torch.optim.Adam(qs, lr=0.01, foreach=False)
    models = (ps, rs, qs)
    reused = []
    # every bind of any StepPlan takes the next serial: a probe's tells how many ran
    probe_grad = [np.zeros(1, np.float32)]
    probe = _kernels.StepPlan([([np.zeros(1, np.float32)], [], None, None)])

    def binds(call):
        probe.bind(probe_grad)
        before = probe.serial
        call()
        probe.bind(probe_grad)
        return probe.serial - before - 1

    def each(change):
        for params in models:
            change(params)

    def step(times=1):
        for _ in range(times):
            reused.append(binds(ours.step) == 0)
            if ref._fo_layout is not None:
                ref._fo_layout.serial = 0  # ref binds at every step
            assert binds(ref.step) >= 1  # (twice where a tensor proves unfit)
            theirs.step()
            for p, r in zip(ps, rs):
                assert torch.equal(p.detach(), r.detach())
            for p, r in zip(ps, rs):
                for name, t in ours.state[p].items():
                    assert torch.equal(t, ref.state[r][name])
        _assert_equal_runs(ps, qs, ours, theirs)

    def grads(seed):
        g = torch.Generator().manual_seed(seed)
        values = [torch.randn(4, 5, generator=g, dtype=torch.float64) for _ in ps]
        each(lambda params: [setattr(p, "grad", v.clone()) for p, v in zip(params, values)])

    # a new grad tensor: bound as a tensor, retained at the next step, which binds its
    # view; the step after that binds every retained view and the next reuses that bind
    after_new = [False, False, False, True]
    grads(0)
    step(4)
    assert reused == after_new
    each(lambda params: [p.grad.mul_(-0.5) for p in params])  # values changed in place
    step()
    each(lambda params: [p.grad.zero_().add_(1.5) for p in params])
    step()
    assert reused[-2:] == [True, True]
    each(lambda params: setattr(params[1], "grad", params[1].grad * 3))
    step(4)
    assert reused[-4:] == after_new
    each(lambda params: setattr(params[0], "grad", None))  # skipped, as in torch
    step(2)
    assert reused[-2:] == [False, False]
    each(lambda params: setattr(params[0], "grad", torch.full((4, 5), 0.25, dtype=torch.float64)))
    step(4)
    assert reused[-4:] == after_new
    g = torch.randn(5, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    each(lambda params: setattr(params[2], "grad", g.clone().t()))  # non-contiguous: its
    step(4)                                                           # copy is made anew
    assert not any(reused[-4:])
    each(lambda params: setattr(params[2], "grad", params[2].grad.contiguous()))
    step(4)
    assert reused[-4:] == after_new
    each(lambda params: setattr(params[1].grad, "data", torch.full((4, 5), -2.0, dtype=torch.float64)))
    step(3)  # the same grad tensor with a new storage: read again (and retained at once)
    assert reused[-3:] == [False, False, True]
    each(lambda params: setattr(params[0], "data", params[0].detach().clone()))
    step(4)  # a param's new storage: the layout is rebuilt
    assert reused[-4:] == after_new
    for opt in (ours, ref, theirs):
        opt.param_groups[0]["lr"] = 0.003  # what an LR scheduler does
    step(2)
    assert reused[-2:] == [True, True]


def test_loaded_state_is_packed_as_new_state_and_large_tensors_are_kept():
    # a checkpoint's state tensors lie wherever its loader put them: load_state_dict
    # copies those under 4 MiB side by side per name (64-byte slots, param order) and the
    # step counters (8-byte slots), as a step packs the state it creates; larger ones are
    # kept as loaded (no second copy of a large state)
    from fastopt import _kernels

    shapes = [(3,), (4, 5), (), (17,)]
    big = _kernels.HUGEPAGE_BYTES // 4  # float32 elements of the first kept size
    qs = [torch.nn.Parameter(torch.ones(s)) for s in shapes + [(big,)]]
    theirs = torch.optim.Adam(qs, lr=0.1, foreach=False)
    for q in qs:
        q.grad = torch.ones(q.shape)
    theirs.step()
    ps = [torch.nn.Parameter(q.detach().clone()) for q in qs]
    saved = copy.deepcopy(theirs.state_dict())  # (a torch state_dict holds the live state)
    values = copy.deepcopy(saved)
    ours = ft.Adam(ps, lr=0.1)
    ours.load_state_dict(saved)
    for key in ("exp_avg", "exp_avg_sq"):
        ptrs = [ours.state[p][key].data_ptr() for p in ps]
        assert [b - a for a, b in zip(ptrs, ptrs[1:4])] == [64, 128, 64]
        assert all(ptr % 64 == 0 for ptr in ptrs[:4])
        assert ours.state[ps[4]][key] is saved["state"][4][key]  # large: as loaded
        for i in range(4):
            assert ours.state[ps[i]][key].data_ptr() != saved["state"][i][key].data_ptr()
        for i, p in enumerate(ps):
            assert torch.equal(ours.state[p][key], values["state"][i][key])
    steps = [ours.state[p]["step"].data_ptr() for p in ps]
    assert [b - a for a, b in zip(steps, steps[1:])] == [8, 8, 8, 8]
    assert all(int(ours.state[p]["step"]) == 1 for p in ps)
    for p, q in zip(ps, qs):
        p.grad, q.grad = torch.full(p.shape, 0.5), torch.full(q.shape, 0.5)
    ours.step()
    theirs.step()
    _assert_equal_runs(ps, qs, ours, theirs)
    assert int(ours.state[ps[0]]["step"]) == 2


def test_grads_are_read_as_p_grad_reads_them_also_where_a_class_redefines_grad():
    # gather_torch_grads calls torch's C getter of Tensor.grad directly for the param types
    # whose lookup of "grad" ends there, checked once per type and again whenever the
    # type changes (CPython's version tag): a class redefining grad later is followed
    from fastopt import _kernels

    assert not _kernels.use_grad_getter(None)  # not a getset descriptor: nothing changes

    class Tagged(torch.nn.Parameter):
        pass

    def model():
        return [Tagged(torch.ones(4, 5)), torch.nn.Parameter(torch.ones(4, 5))]

    ps, qs = model(), model()
    ours, theirs = ft.SGD(ps, lr=0.1), torch.optim.SGD(qs, lr=0.1)
    for p in ps + qs:
        p.grad = torch.full((4, 5), 0.5)

    def step(times):
        for _ in range(times):
            ours.step()
            theirs.step()
        _assert_equal_runs(ps, qs, ours, theirs)

    step(3)  # Tagged is checked and remembered
    Tagged.grad = property(lambda self: torch.full((4, 5), -3.0))  # type: ignore[assignment]
    try:
        step(3)
        torch.testing.assert_close(ps[0].detach(), torch.full((4, 5), 1 - 0.15 + 0.9))
    finally:
        del Tagged.grad
    step(2)  # torch's getter again
    torch.testing.assert_close(ps[0].detach(), torch.full((4, 5), 1 - 0.25 + 0.9))

    class Lazy(torch.nn.Parameter):  # attribute access that is not the generic one
        def __getattribute__(self, name):
            if name == "grad":
                return torch.full((4, 5), 1.0)
            return super().__getattribute__(name)

    ps, qs = [Lazy(torch.ones(4, 5))], [Lazy(torch.ones(4, 5))]
    ours, theirs = ft.SGD(ps, lr=0.1), torch.optim.SGD(qs, lr=0.1)
    step(2)
    torch.testing.assert_close(ps[0].detach(), torch.full((4, 5), 0.8))


def test_negative_views_are_found_through_is_negs_c_function_or_any_callable():
    # bind asks Tensor.is_neg (DLPack has no negative bit) through its C function when it
    # is a METH_NOARGS method of torch's tensor type; any other callable is called
    from fastopt import _kernels

    api = getattr(torch.Tensor, "__dlpack_c_exchange_api__", None)
    if api is None:
        pytest.skip("this torch has no DLPack C exchange API")
    p = np.zeros((4, 5), np.float32)
    plan = _kernels.StepPlan([([p], [], None, None)])
    asked = []

    def is_neg(t):
        asked.append(t)
        return torch.Tensor.is_neg(t)

    try:
        for ask in (torch.Tensor.is_neg, is_neg):
            assert _kernels.use_torch_exchange_api(api, torch.Tensor, ask)
            neg = torch._neg_view(torch.ones(4, 5))
            with pytest.raises(_kernels.DLPackUnfit, match="negative"):
                plan.bind([neg])
            assert plan.bind([torch.ones(4, 5)])
            plan.release()
        assert len(asked) == 2
    finally:
        assert _kernels.use_torch_exchange_api(api, torch.Tensor, torch.Tensor.is_neg)


@pytest.mark.parametrize("fresh", [False, True])
def test_grads_reach_their_params_when_units_reorder_the_params(fresh):
    # groups with equal options share one kernel call (one unit), so the plan's order of
    # the params is not the groups' where equal groups are not adjacent (0 and 2 here),
    # and SGD's first step puts the params whose state it creates first: each grad must
    # still update its own param (a bug before: param 1 got param 2's grad)
    def model():
        return [torch.nn.Parameter(torch.full((3,), float(k))) for k in range(4)]

    def groups(params):
        return [{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 0.2},
                {"params": [params[2], params[3]], "lr": 0.1}]

    ps, qs = model(), model()
    ours = ft.SGD(groups(ps), lr=0.1, momentum=0.5)
    theirs = torch.optim.SGD(groups(qs), lr=0.1, momentum=0.5, foreach=False)
    kept = [torch.full((3,), float(k + 1)) for k in range(4)]
    for step in range(6):
        for k, (p, q) in enumerate(zip(ps, qs)):
            if step == 0 and k == 1:  # no grad at first: its momentum starts a step later
                p.grad = q.grad = None
                continue
            g = kept[k] * (step + 1) if fresh else kept[k]
            p.grad, q.grad = g, g.clone()
        ours.step()
        theirs.step()
        _assert_equal_runs(ps, qs, ours, theirs)
