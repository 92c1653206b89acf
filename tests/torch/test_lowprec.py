"""fastopt.torch with state kept in fewer bits (state_dtype "bfloat16"/"int8"): the same
bits as fastopt's numpy optimizers with the same options, an exact state_dict round trip,
and what torch.optim makes of such a state dict (skipped without torch)."""

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import fastopt  # noqa: E402
import fastopt.torch as ft  # noqa: E402
from fastopt.optim import storage  # noqa: E402

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "NAdam", "Lion"]
FORMATS = ["bfloat16", "int8"]
MIN = 256  # min_lowprec_size: the 300- and 600-element params are low-precision


def _options(name):
    return {"SGD": dict(momentum=0.9, weight_decay=0.01),
            "RMSprop": dict(momentum=0.5, centered=True)}.get(name, {})


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(300, generator=g)),
            torch.nn.Parameter(torch.randn(10, generator=g, dtype=torch.float64)),
            torch.nn.Parameter(torch.randn(20, 30, generator=g, dtype=torch.float64))]


def _grads(params, step):
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]


def _decoded(value):
    """A state value as a float64 numpy array."""
    if isinstance(value, dict):
        return storage.Int8State(value["codes"].numpy(), value["absmax"].numpy(),
                                 value["nonnegative"]).to_array(np.float64)
    return value.detach().double().numpy()


def _run(opt, params, steps, start=0):
    for t in range(start, start + steps):
        for p, g in zip(params, _grads(params, t)):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("state_dtype", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_same_bits_as_fastopts_numpy_optimizer(name, state_dtype):
    ps = _params()
    arrays = [p.detach().numpy().copy() for p in ps]
    ours = getattr(ft, name)(ps, lr=0.01, state_dtype=state_dtype, min_lowprec_size=MIN,
                             state_seed=7, **_options(name))
    theirs = getattr(fastopt, name)(arrays, lr=0.01, state_dtype=state_dtype,
                                    min_lowprec_size=MIN, state_seed=7, **_options(name))
    for t in range(6):
        grads = _grads(ps, t)
        for p, g in zip(ps, grads):
            p.grad = g
        ours.step()
        theirs.step([g.numpy() for g in grads])
    for k, p in enumerate(ps):
        np.testing.assert_array_equal(p.detach().numpy(), arrays[k])
        entry = ours.state[p]
        for name_ in ours._state_names:
            if name_ in entry:
                low = p.numel() >= MIN
                assert isinstance(entry[name_], dict) == (low and state_dtype == "int8")
                assert (entry[name_].dtype == torch.bfloat16 if low and state_dtype == "bfloat16"
                        else True)
                np.testing.assert_array_equal(_decoded(entry[name_]),
                                              _saved_decoded(theirs.state[k][name_]))


def _saved_decoded(value):
    if isinstance(value, (storage.Int8State, storage.BFloat16State)):
        return value.to_array(np.float64)
    return np.asarray(value, dtype=np.float64)


@pytest.mark.parametrize("state_dtype", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_is_exact_and_training_goes_on(name, state_dtype):
    options = dict(lr=0.01, state_dtype=state_dtype, min_lowprec_size=MIN, **_options(name))
    ps = _params()
    opt = getattr(ft, name)(ps, **options)
    _run(opt, ps, 3)
    saved = copy.deepcopy(opt.state_dict())
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    other = getattr(ft, name)(qs, **options)
    other.load_state_dict(saved)
    for p, q in zip(ps, qs):
        a, b = opt.state[p], other.state[q]
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], dict):  # codes, block maxima and map exactly
                assert torch.equal(a[key]["codes"], b[key]["codes"])
                assert torch.equal(a[key]["absmax"], b[key]["absmax"])
                assert b[key]["codes"].dtype == torch.uint8
                assert a[key]["nonnegative"] == b[key]["nonnegative"]
            elif key != "mu_product":  # torch's format keeps NAdam's in float32
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key])
    _run(opt, ps, 3, start=3)
    _run(other, qs, 3, start=3)
    for p, q in zip(ps, qs):
        if name == "NAdam":  # mu_product went through float32 (as torch saves it)
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6)
        else:
            assert torch.equal(p, q)


def test_bfloat16_state_loads_into_torch_optim_as_its_exact_values():
    ps = _params()
    opt = ft.Adam(ps, lr=0.01, state_dtype="bfloat16", min_lowprec_size=MIN)
    _run(opt, ps, 2)
    saved = copy.deepcopy(opt.state_dict())
    ref = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in ps], lr=0.01)
    ref.load_state_dict(saved)
    for k, p in enumerate(ref.param_groups[0]["params"]):
        exp_avg = ref.state[p]["exp_avg"]
        assert exp_avg.dtype == p.dtype  # torch casts, exactly
        np.testing.assert_array_equal(exp_avg.double().numpy(),
                                      saved["state"][k]["exp_avg"].double().numpy())
    _run(ref, ref.param_groups[0]["params"], 1, start=2)  # and steps on, in full precision


def test_int8_state_dict_for_torch_optim_is_decoded_first():
    ps = _params()
    opt = ft.AdamW(ps, lr=0.01, state_dtype="int8", min_lowprec_size=MIN)
    _run(opt, ps, 2)
    saved = opt.state_dict()
    assert isinstance(saved["state"][0]["exp_avg"], dict)
    full = ft.full_precision_state_dict(saved)
    for k, p in enumerate(ps):
        for name in ("exp_avg", "exp_avg_sq"):
            value = full["state"][k][name]
            assert isinstance(value, torch.Tensor) and value.shape == p.shape
            np.testing.assert_array_equal(value.double().numpy(),
                                          _decoded(opt.state[p][name]))
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    ref = torch.optim.AdamW(qs, lr=0.01)
    ref.load_state_dict(full)
    _run(ref, qs, 1, start=2)
    assert int(ref.state[qs[0]]["step"]) == 3


def test_full_precision_state_dict_is_quantized_on_load():
    ps = _params()
    ref = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in ps], lr=0.01)
    _run(ref, ref.param_groups[0]["params"], 2)
    for state_dtype in FORMATS:
        opt = ft.Adam(_params(), lr=0.01, state_dtype=state_dtype, min_lowprec_size=MIN)
        opt.load_state_dict(copy.deepcopy(ref.state_dict()))
        for p, q in zip(opt.param_groups[0]["params"], ref.param_groups[0]["params"]):
            value, exact = opt.state[p]["exp_avg"], ref.state[q]["exp_avg"].double().numpy()
            if p.numel() < MIN:
                assert torch.equal(value, ref.state[q]["exp_avg"])
            else:
                assert isinstance(value, dict) if state_dtype == "int8" \
                    else value.dtype == torch.bfloat16
                np.testing.assert_allclose(_decoded(value), exact, rtol=0.02,
                                           atol=0.02 * np.abs(exact).max())


def test_options_are_checked_and_kept_through_pickle():
    with pytest.raises(ValueError, match="state_dtype"):
        ft.Adam(_params(), state_dtype="float16")
    with pytest.raises((TypeError, ValueError), match="min_lowprec_size"):
        ft.Adam(_params(), state_dtype="int8", min_lowprec_size=-1)
    ps = _params()
    opt = ft.Adam(ps, lr=0.01, state_dtype="int8", min_lowprec_size=MIN)
    assert opt.state_dtype == "int8" and ft.Adam(ps).state_dtype is None
    _run(opt, ps, 1)
    for copied in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert copied.state_dtype == "int8"
        qs = [p for g in copied.param_groups for p in g["params"]]
        _run(copied, qs, 1, start=1)
        assert isinstance(copied.state[qs[0]]["exp_avg"], dict)


def test_a_failing_step_changes_nothing():
    ps = _params()
    opt = ft.Adam(ps, lr=0.01, state_dtype="int8", min_lowprec_size=MIN)
    _run(opt, ps, 1)
    before = copy.deepcopy(opt.state_dict())
    weights = [p.detach().clone() for p in ps]
    for p, g in zip(ps, _grads(ps, 1)):
        p.grad = g
    ps[1].grad = ps[1].detach()  # the param's own memory: refused
    with pytest.raises(ValueError):
        opt.step()
    for p, w in zip(ps, weights):
        assert torch.equal(p.detach(), w)
    after = opt.state_dict()
    assert int(after["state"][0]["step"]) == int(before["state"][0]["step"])
    assert torch.equal(after["state"][0]["exp_avg"]["codes"],
                       before["state"][0]["exp_avg"]["codes"])
