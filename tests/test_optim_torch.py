"""fastopt.optim against torch.optim (optional: skipped when torch is not installed).

50 random steps over several tensors, some of them skipped (grad None) now and then, with
torch's single-tensor implementation (foreach=False) and, where torch has a fused CPU kernel
(Adam, AdamW, SGD, Adagrad), with fused=True. NAdam's per-step scalars are doubles in
fastopt; torch keeps its mu_product in its default dtype, which each test sets to the
dtype of the parameters.
"""

import numpy as np
import pytest

import fastopt

torch = pytest.importorskip("torch")



@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """The tensors here are tiny: keep torch's thread pool out of the way (and restore it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
FUSED = {"Adam", "AdamW", "SGD", "Adagrad"}

CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=1e-2, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.1, weight_decay=1e-2, initial_accumulator_value=0.3,
                     maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=1e-2, eps=1e-3)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, alpha=0.9, maximize=True)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=1e-2, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.01, weight_decay=1e-2,
                   maximize=True, eps=1e-6)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
]
IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in o.items() if k != "lr") for n, o in CASES]
VARIANTS = [("foreach=False", dict(foreach=False)), ("fused", dict(fused=True))]


@pytest.fixture
def torch_scalars_like(dtype):
    """torch keeps NAdam's mu_product (and its steps) in its default dtype: float64 for a
    float64 comparison, as fastopt keeps them in double."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_matches_torch_for_50_steps(case, variant, dtype, rng, torch_scalars_like):
    name, options = CASES[case]
    vname, vopts = variant
    if vname == "fused" and name not in FUSED:
        pytest.skip(f"torch has no fused CPU {name}")
    shapes = [(31, 17), (100,), (3, 4, 5)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tparams, **options, **vopts)
    opt = getattr(fastopt, name)(params, **options)
    for step in range(50):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        if step % 9 == 4:
            grads[2] = None
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        topt.step()
        opt.step(grads)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), **TOL[dtype])
    for i, tp in enumerate(tparams):
        tstate = topt.state[tp]
        for key, value in tstate.items():
            if key == "step":
                assert int(opt.state[i]["step"]) == int(value)
            elif key == "mu_product":  # torch rounds it to its default dtype each step
                rel = 1e-14 if dtype == np.float64 else 1e-5
                assert float(opt.state[i][key]) == pytest.approx(float(value), rel=rel, abs=0)
            else:
                np.testing.assert_allclose(opt.state[i][key], value.numpy(), **TOL[dtype],
                                           err_msg=key)


def test_state_names_match_torch(rng):
    for name, options in CASES:
        p = rng.standard_normal(4)
        tp = torch.tensor(p.copy(), requires_grad=True)
        topt = getattr(torch.optim, name)([tp], **options)
        opt = getattr(fastopt, name)([p], **options)
        tp.grad = torch.ones(4, dtype=torch.float64)
        topt.step()
        opt.step([np.ones(4)])
        assert set(opt.state[0]) == set(topt.state[tp]), name
