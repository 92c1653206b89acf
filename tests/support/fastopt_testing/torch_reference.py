"""The torch comparisons: their cases, deterministic inputs, runners, and torch 2.13's
recorded outputs (tests/data/torch_*.npz, written by tools/record_torch_reference.py).

Without torch the tests compare fastopt against the recorded outputs, so the default test
run still checks torch.optim's semantics; with torch they also compare live, and check that
the recording is what the installed torch computes. torch is imported only inside the
``torch_*`` functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import fastopt
import fastopt.schedules as S
from fastopt_testing import paths

DATA = paths.DATA
OPTIM_FILE = DATA / "torch_optim.npz"
SCHEDULES_FILE = DATA / "torch_schedules.npz"
TORCH_VERSION = "2.13"

# --------------------------------------------------------------------------------------------
# Optimizers: 200 steps over three tensors, the third one without a gradient now and then
# --------------------------------------------------------------------------------------------

STEPS = 200
SHAPES = [(5, 4), (7,), (2, 3, 2)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
FUSED = {"Adam", "AdamW", "SGD", "Adagrad"}  # torch has a fused CPU kernel for these
VARIANTS = {"foreach=False": dict(foreach=False), "fused": dict(fused=True)}
DTYPES = {"float32": np.float32, "float64": np.float64}


def uniform(seed: int, step: int, index: int, n: int) -> np.ndarray:
    """n numbers in [-1, 1) hashed (splitmix64) from (seed, step, index, i): the same bits
    on every platform and numpy version, unlike a random generator's stream."""
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93)
         + np.uint64((seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9
                      + index * 0x94D049BB133111EB) % 2**64))
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-52 - 1.0


def initial_params(dtype: Any) -> list[np.ndarray]:
    return [uniform(1, 0, k, math.prod(s)).reshape(s).astype(dtype)
            for k, s in enumerate(SHAPES)]


def grads_at(step: int, dtype: Any) -> list[np.ndarray | None]:
    """The gradients of step `step` (0-based); the last tensor has none when step % 9 == 4."""
    grads: list[np.ndarray | None] = [uniform(2, step, k, math.prod(s)).reshape(s).astype(dtype)
                                      for k, s in enumerate(SHAPES)]
    if step % 9 == 4:
        grads[-1] = None
    return grads


@dataclass(frozen=True)
class OptimCase:
    """One comparison: an optimizer, its options, optionally a second param group (params
    1 and 2, with `group2`'s options) and an LR scheduler run after every step."""

    name: str
    options: dict = field(default_factory=dict)
    group2: dict | None = None
    scheduler: tuple[str, dict] | None = None
    #: the numpy optimizer's options that `scheduler` drives, as fastopt schedules (lr,
    #: betas, momentum); None: the case has no numpy counterpart
    numpy_schedules: Callable[[], dict] | None = None
    label: str = ""

    @property
    def id(self) -> str:
        opts = "-".join(f"{k}={v}" for k, v in self.options.items())
        parts = [self.name, opts, self.label]
        return "-".join(p for p in parts if p)

    @property
    def has_numpy(self) -> bool:
        return self.scheduler is None or self.numpy_schedules is not None

    def groups(self, params: list) -> list:
        if self.group2 is None:
            return [{"params": list(params)}]
        return [{"params": [params[0]]}, {"params": list(params[1:]), **self.group2}]


ONE_CYCLE = dict(max_lr=0.02, total_steps=STEPS)
#: OneCycleLR's momentum (cycle_momentum=True) as the numpy optimizer's betas / momentum
CYCLED_BETAS = lambda: dict(lr=S.one_cycle(**ONE_CYCLE),  # noqa: E731
                            betas=(S.one_cycle_momentum(STEPS), 0.999))
CYCLED_MOMENTUM = lambda: dict(lr=S.one_cycle(**ONE_CYCLE),  # noqa: E731
                               momentum=S.one_cycle_momentum(STEPS))

OPTIM_CASES = [
    OptimCase("SGD", dict(lr=0.05)),
    OptimCase("SGD", dict(lr=0.05, momentum=0.9)),
    OptimCase("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2,
                          maximize=True)),
    OptimCase("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    OptimCase("SGD", dict(lr=0.05, weight_decay=0.1)),
    OptimCase("SGD", dict(lr=0.05, momentum=0.9), group2=dict(momentum=0.0, lr=0.01),
              label="two-groups"),
    OptimCase("Adam", dict(lr=0.01)),
    OptimCase("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=1e-2, amsgrad=True)),
    OptimCase("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    OptimCase("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    OptimCase("Adam", dict(lr=0.01), group2=dict(lr=0.002, weight_decay=0.05, amsgrad=True),
              label="two-groups"),
    OptimCase("AdamW", dict(lr=0.01)),
    OptimCase("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    OptimCase("AdamW", dict(lr=0.01, weight_decay=0.05),
              scheduler=("OneCycleLR", dict(ONE_CYCLE, cycle_momentum=False)),
              numpy_schedules=lambda: dict(lr=S.one_cycle(**ONE_CYCLE)), label="OneCycleLR"),
    OptimCase("AdamW", dict(lr=0.01, weight_decay=0.05),
              scheduler=("OneCycleLR", dict(ONE_CYCLE)), numpy_schedules=CYCLED_BETAS,
              label="OneCycleLR-cycling-betas"),
    OptimCase("Adagrad", dict(lr=0.05)),
    OptimCase("Adagrad", dict(lr=0.05, lr_decay=0.1, weight_decay=1e-2,
                              initial_accumulator_value=0.3, maximize=True)),
    OptimCase("RMSprop", dict(lr=0.01)),
    OptimCase("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=1e-2,
                              eps=1e-3)),
    OptimCase("RMSprop", dict(lr=0.01, momentum=0.5, alpha=0.9, maximize=True)),
    OptimCase("RMSprop", dict(lr=0.01, centered=True)),
    OptimCase("SGD", dict(lr=0.05, momentum=0.9),
              scheduler=("OneCycleLR", dict(ONE_CYCLE)), numpy_schedules=CYCLED_MOMENTUM,
              label="OneCycleLR-cycling-momentum"),
    OptimCase("Adadelta", dict(lr=1.0)),
    OptimCase("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=1e-2, maximize=True)),
    OptimCase("NAdam", dict(lr=0.01)),
    OptimCase("NAdam", dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.01, weight_decay=1e-2,
                            maximize=True, eps=1e-6)),
    OptimCase("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    OptimCase("Adam", dict(lr=0.01),
              scheduler=("CosineAnnealingLR", dict(T_max=50, eta_min=1e-4)),
              numpy_schedules=lambda: dict(lr=S.cosine(0.01, T_max=50, eta_min=1e-4)),
              label="CosineAnnealingLR"),
]


def variants_of(case: OptimCase) -> list[str]:
    return [v for v in VARIANTS if v != "fused" or case.name in FUSED]


def optim_key(case: OptimCase, variant: str, dtype: Any) -> str:
    return f"{case.id}|{variant}|{np.dtype(dtype).name}"


def run_numpy(case: OptimCase, dtype: Any, steps: int = STEPS) -> tuple[list, list]:
    """fastopt's numpy optimizer over the case's inputs: (params, state per param)."""
    params = initial_params(dtype)
    options = dict(case.options)
    if case.numpy_schedules is not None:
        options.update(case.numpy_schedules())
    cls: Any = getattr(fastopt, case.name)
    if case.name == "Adam" and options.pop("decoupled_weight_decay", False):
        cls = fastopt.AdamW  # torch's Adam(decoupled_weight_decay=True) is fastopt's AdamW
    opt = cls(case.groups(params), **options)
    for step in range(steps):
        opt.step(grads_at(step, dtype))
    state = [{k: np.asarray(v) for k, v in opt.state.get(i, {}).items()}
             for i in range(len(params))]
    return params, state


def _torch_run(module: Any, case: OptimCase, variant: str, dtype: Any,
               steps: int) -> tuple[list, list]:
    """torch keeps NAdam's mu_product (and every step count) in its default dtype: the
    run's, as fastopt keeps them in double."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        return _torch_steps(module, case, variant, dtype, steps)
    finally:
        torch.set_default_dtype(before)


def _torch_steps(module: Any, case: OptimCase, variant: str, dtype: Any,
                 steps: int) -> tuple[list, list]:
    import torch

    tparams = [torch.nn.Parameter(torch.from_numpy(p)) for p in initial_params(dtype)]
    opt = getattr(module, case.name)(case.groups(tparams), **case.options,
                                     **VARIANTS[variant])
    sched = None
    if case.scheduler is not None:
        name, kwargs = case.scheduler
        sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
    for step in range(steps):
        for tp, g in zip(tparams, grads_at(step, dtype)):
            tp.grad = None if g is None else torch.from_numpy(g)
        opt.step()
        if sched is not None:
            sched.step()
    params = [tp.detach().numpy().copy() for tp in tparams]
    state = [{k: np.array(v.detach().numpy(), copy=True) for k, v in opt.state[tp].items()
              if v is not None} for tp in tparams]
    return params, state


def torch_run(case: OptimCase, variant: str, dtype: Any, steps: int = STEPS):
    """torch.optim over the case's inputs: (params, state per param)."""
    import torch

    return _torch_run(torch.optim, case, variant, dtype, steps)


def fastopt_torch_run(case: OptimCase, variant: str, dtype: Any, steps: int = STEPS):
    """fastopt.torch over the case's inputs: (params, state per param)."""
    import fastopt.torch

    return _torch_run(fastopt.torch, case, variant, dtype, steps)


def assert_same_run(ours: tuple[list, list], ref: tuple[list, list], dtype: Any,
                    label: str = "") -> None:
    """Params and state agree within TOL; steps and state names exactly."""
    for k, (p, q) in enumerate(zip(ours[0], ref[0])):
        np.testing.assert_allclose(p, q, **TOL[dtype], err_msg=f"{label} param {k}")
    for k, (s, r) in enumerate(zip(ours[1], ref[1])):
        assert set(s) == set(r), (label, k, sorted(s), sorted(r))
        for name in r:
            if name == "step":
                assert float(s[name]) == float(r[name]), (label, k)
            elif name == "mu_product":  # torch rounds it to its default dtype each step (in
                # float32 it underflows to 0 after ~150 steps; fastopt keeps it in double)
                rel = 1e-14 if dtype == np.float64 else 1e-5
                bound = rel * abs(float(r[name])) + float(np.finfo(dtype).tiny)
                assert abs(float(s[name]) - float(r[name])) <= bound, \
                    (label, k, float(s[name]), float(r[name]))
            else:
                np.testing.assert_allclose(s[name], r[name], **TOL[dtype],
                                           err_msg=f"{label} state {k} {name}")


def pack_run(key: str, run: tuple[list, list]) -> dict[str, np.ndarray]:
    """A run as two arrays (few, so the recording stays small): the values of its params and
    state, concatenated in the order of ``key|names``."""
    names, parts = [], []
    for k, p in enumerate(run[0]):
        names.append(f"p{k}")
        parts.append(np.ravel(p))
    for k, s in enumerate(run[1]):
        for name in sorted(s):
            value = np.asarray(s[name], dtype=run[0][k].dtype)
            names.append(f"s{k}:{name}" + ("#" if value.ndim == 0 else ""))  # '#': a scalar
            parts.append(np.ravel(value))
    return {f"{key}|names": np.array(names), f"{key}|values": np.concatenate(parts)}


def unpack_run(data: Any, key: str) -> tuple[list, list]:
    """The inverse of pack_run, reading a recording."""
    names, values = data[f"{key}|names"], data[f"{key}|values"]
    params: list = [None] * len(SHAPES)
    state: list[dict] = [{} for _ in SHAPES]
    start = 0
    for name in map(str, names):
        k = int(name[1:].split(":")[0])
        shape = () if name.endswith("#") else SHAPES[k]
        name = name.rstrip("#")
        size = math.prod(shape)
        value = values[start:start + size].reshape(shape)
        start += size
        if name.startswith("p"):
            params[k] = value
        else:
            state[k][name.split(":", 1)[1]] = value
    assert start == values.size, key
    return params, state


# --------------------------------------------------------------------------------------------
# Schedules: get_last_lr()[0] after k = 0..n scheduler steps
# --------------------------------------------------------------------------------------------


def scale_fn(x: float) -> float:  # a custom CyclicLR scale_fn (module level: picklable)
    return 1.0 / (1.0 + x)


# torch computes these in closed form from the step (get_lr uses last_epoch / T_cur only),
# and fastopt uses the same expressions in the same order: equal to the last bit.
EXACT = [
    ("CosineAnnealingWarmRestarts T_mult=1",
     lambda L, o: L.CosineAnnealingWarmRestarts(o, 7, 1, 0.001), S.cosine_restarts(0.1, 7, 1, 0.001), 60),
    ("CosineAnnealingWarmRestarts T_mult=2",
     lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 2, 0.001), S.cosine_restarts(0.1, 3, 2, 0.001), 100),
    ("CosineAnnealingWarmRestarts T_mult=3",
     lambda L, o: L.CosineAnnealingWarmRestarts(o, 2, 3), S.cosine_restarts(0.1, 2, 3), 100),
    ("CyclicLR triangular",
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, 5, 3, cycle_momentum=False), S.cyclic(0.01, 0.1, 5, 3), 60),
    ("CyclicLR triangular2",
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, 4, mode="triangular2", cycle_momentum=False),
     S.cyclic(0.01, 0.1, 4, mode="triangular2"), 60),
    ("CyclicLR exp_range",
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, 5, 2, mode="exp_range", gamma=0.97, cycle_momentum=False),
     S.cyclic(0.01, 0.1, 5, 2, "exp_range", 0.97), 60),
    ("CyclicLR scale_fn",
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, 5, scale_fn=scale_fn, scale_mode="iterations",
                             cycle_momentum=False),
     S.cyclic(0.01, 0.1, 5, scale_fn=scale_fn, scale_mode="iterations"), 40),
]
# OneCycleLR: compared on the steps an optimizer uses, 0 .. total_steps - 1.
for _strategy in ("cos", "linear"):
    for _three in (False, True):
        EXACT.append((
            f"OneCycleLR {_strategy} three_phase={_three}",
            lambda L, o, a=_strategy, t=_three: L.OneCycleLR(o, 0.5, total_steps=50, anneal_strategy=a,
                                                             three_phase=t, cycle_momentum=False),
            S.one_cycle(0.5, 50, anneal_strategy=_strategy, three_phase=_three), 49))
EXACT.append(("OneCycleLR pct/div",
              lambda L, o: L.OneCycleLR(o, 0.5, total_steps=37, pct_start=0.25, div_factor=10.0,
                                        final_div_factor=100.0, cycle_momentum=False),
              S.one_cycle(0.5, 37, 0.25, div_factor=10, final_div_factor=100), 36))

# torch updates these recursively (lr_t = lr_{t-1} * ratio_t), fastopt uses the closed form
# (torch's own _get_closed_form_lr). The two round differently in the last bits; the recursion
# drifts by about one ulp per step, so over <= 500 steps they agree to rtol 1e-12 (measured
# worst case 1.3e-14, cosine with eta_min > 0 near its minimum).
RECURSIVE = [
    ("StepLR", lambda L, o: L.StepLR(o, 7, 0.5), S.step_decay(0.1, 7, 0.5), 100),
    ("StepLR resnet", lambda L, o: L.StepLR(o, 30, 0.1), S.step_decay(0.1, 30), 100),
    ("MultiStepLR", lambda L, o: L.MultiStepLR(o, [5, 9, 9, 20], 0.3), S.multistep(0.1, [5, 9, 9, 20], 0.3), 40),
    ("ExponentialLR", lambda L, o: L.ExponentialLR(o, 0.97), S.exponential(0.1, 0.97), 500),
    ("CosineAnnealingLR", lambda L, o: L.CosineAnnealingLR(o, 17, 0.001), S.cosine(0.1, 17, 0.001), 60),
    ("CosineAnnealingLR eta_min=0", lambda L, o: L.CosineAnnealingLR(o, 50), S.cosine(0.1, 50), 160),
    ("LinearLR up", lambda L, o: L.LinearLR(o, 0.1, 0.9, 13), S.linear(0.1, 0.1, 0.9, 13), 30),
    ("LinearLR down", lambda L, o: L.LinearLR(o, 1.0, 0.05, 13), S.linear(0.1, 1.0, 0.05, 13), 30),
    ("ConstantLR", lambda L, o: L.ConstantLR(o, 0.3, 4), S.constant(0.1, 0.3, 4), 10),
    ("PolynomialLR", lambda L, o: L.PolynomialLR(o, 20, 2.0), S.polynomial(0.1, 20, 2.0), 30),
    ("PolynomialLR sqrt", lambda L, o: L.PolynomialLR(o, 20, 0.5), S.polynomial(0.1, 20, 0.5), 30),
    ("SequentialLR warmup+cosine",
     lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 5), L.CosineAnnealingLR(o, 20)], [5]),
     S.sequential([S.linear(0.1, 0.1, 1.0, 5), S.cosine(0.1, 20)], [5]), 40),
    ("SequentialLR three",
     lambda L, o: L.SequentialLR(o, [L.ConstantLR(o, 0.5, 3), L.ExponentialLR(o, 0.9), L.StepLR(o, 4, 0.5)],
                                 [4, 10]),
     S.sequential([S.constant(0.1, 0.5, 3), S.exponential(0.1, 0.9), S.step_decay(0.1, 4, 0.5)], [4, 10]), 30),
    ("ChainedScheduler constant*exp",
     lambda L, o: L.ChainedScheduler([L.ConstantLR(o, 0.5, 4), L.ExponentialLR(o, 0.9)]),
     S.chain(0.1, S.constant(1.0, 0.5, 4), S.exponential(1.0, 0.9)), 30),
    ("ChainedScheduler linear*step",
     lambda L, o: L.ChainedScheduler([L.LinearLR(o, 0.2, 1.0, 6), L.StepLR(o, 4, 0.5)]),
     S.chain(0.1, S.linear(1.0, 0.2, 1.0, 6), S.step_decay(1.0, 4, 0.5)), 30),
    ("warmup = ChainedScheduler(LinearLR, ExponentialLR)",
     lambda L, o: L.ChainedScheduler([L.LinearLR(o, 0.2, 1.0, 6), L.ExponentialLR(o, 0.9)]),
     S.warmup(S.exponential(0.1, 0.9), 6, 0.2), 30),
    ("warmup shift = SequentialLR(LinearLR, CosineAnnealingLR)",
     lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.2, 1.0, 6), L.CosineAnnealingLR(o, 20)], [6]),
     S.warmup(S.cosine(0.1, 20), 6, 0.2, shift=True), 30),
]

# torch's momentum cycling (cycle_momentum=True, the default of OneCycleLR and CyclicLR):
# the optimizer's momentum (SGD) or betas[0] (Adam) after k scheduler steps, against
# fastopt's momentum schedules; closed forms in torch and fastopt alike, equal to the bit.
# (name, scheduler, fastopt schedule, steps, the torch optimizer whose option cycles)
MOMENTUM = []
for _opt in ("SGD", "Adam"):
    for _strategy, _three in (("cos", False), ("cos", True), ("linear", False)):
        MOMENTUM.append((
            f"OneCycleLR momentum {_opt} {_strategy} three_phase={_three}",
            lambda L, o, a=_strategy, t=_three: L.OneCycleLR(o, 0.5, total_steps=50,
                                                             anneal_strategy=a, three_phase=t),
            S.one_cycle_momentum(50, anneal_strategy=_strategy, three_phase=_three), 49, _opt))
    MOMENTUM.append((
        f"OneCycleLR momentum {_opt} pct/base/max",
        lambda L, o: L.OneCycleLR(o, 0.5, total_steps=37, pct_start=0.25, base_momentum=0.7,
                                  max_momentum=0.99),
        S.one_cycle_momentum(37, 0.25, base_momentum=0.7, max_momentum=0.99), 36, _opt))
    MOMENTUM.append((
        f"CyclicLR momentum {_opt} triangular",
        lambda L, o: L.CyclicLR(o, 0.01, 0.1, 5, 3),
        S.cyclic_momentum(step_size_up=5, step_size_down=3), 60, _opt))
    MOMENTUM.append((
        f"CyclicLR momentum {_opt} exp_range",
        lambda L, o: L.CyclicLR(o, 0.01, 0.1, 4, mode="exp_range", gamma=0.97,
                                base_momentum=0.85, max_momentum=0.95),
        S.cyclic_momentum(0.85, 0.95, 4, mode="exp_range", gamma=0.97), 60, _opt))

PLATEAU_CASES = [
    dict(mode="min", factor=0.5, patience=2),
    dict(mode="min", factor=0.5, patience=1, threshold=0.05, threshold_mode="rel", cooldown=2),
    dict(mode="min", factor=0.3, patience=0, threshold=0.1, threshold_mode="abs", min_lr=0.002),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="rel"),
    dict(mode="max", factor=0.1, patience=1, threshold=0.2, threshold_mode="abs", cooldown=1, eps=1e-3),
]


def plateau_id(kw: dict) -> str:
    return str(sorted(kw.items()))


def plateau_metrics(kw: dict) -> np.ndarray:
    """Improve, plateau, noisy (hashed noise), NaNs and negative values."""
    metrics = np.concatenate([np.linspace(2, 1, 6), np.ones(8), 1 + 0.1 * uniform(3, 0, 0, 30),
                              [np.nan, np.nan], -np.linspace(0, 1, 5), np.full(10, -1.0)])
    return -metrics if kw["mode"] == "max" else metrics


def torch_lrs(make: Callable, n: int, base: float = 0.1) -> tuple[np.ndarray, Any]:
    """get_last_lr()[0] after k = 0..n scheduler steps, optimizer.step() first each time."""
    import warnings

    import torch
    from torch.optim import lr_scheduler

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # we follow torch's protocol: no warnings expected
        sched = make(lr_scheduler, opt)
        out = [sched.get_last_lr()[0]]
        for _ in range(n):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr()[0])
    return np.array(out), sched


def torch_momenta(make: Callable, n: int, optimizer: str) -> np.ndarray:
    """The cycled momentum (SGD's ``momentum``, Adam's ``betas[0]``) after k = 0..n
    scheduler steps, optimizer.step() first each time."""
    import torch
    from torch.optim import lr_scheduler

    p = torch.zeros(1, requires_grad=True)
    if optimizer == "SGD":
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam([p], lr=0.1)
    sched = make(lr_scheduler, opt)

    def momentum() -> float:
        group = opt.param_groups[0]
        return group["momentum"] if optimizer == "SGD" else group["betas"][0]

    out = [momentum()]
    for _ in range(n):
        opt.step()
        sched.step()
        out.append(momentum())
    return np.array(out)


def torch_closed_form(sched: Any, n: int) -> np.ndarray | None:
    """torch's own closed form (a private method) at k = 0..n, or None where it has none."""
    if not (hasattr(sched, "_get_closed_form_lr") and hasattr(sched, "base_lrs")):
        return None
    closed = []
    for k in range(n + 1):
        sched.last_epoch = k
        closed.append(sched._get_closed_form_lr()[0])
    return np.asarray(closed)


def torch_plateau(kw: dict) -> dict[str, np.ndarray]:
    """ReduceLROnPlateau over plateau_metrics(kw): lr, best, num_bad_epochs, cooldown."""
    import torch
    from torch.optim import lr_scheduler

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    ref = lr_scheduler.ReduceLROnPlateau(opt, **kw)
    rows = []
    for m in plateau_metrics(kw):
        opt.step()
        ref.step(float(m))
        rows.append((ref.get_last_lr()[0], ref.best, ref.num_bad_epochs, ref.cooldown_counter))
    lr, best, bad, cool = (np.array(c, dtype=np.float64) for c in zip(*rows))
    return {"lr": lr, "best": best, "bad": bad, "cooldown": cool}


def load(path: Path) -> Any:
    """A recording (np.load without pickle); its torch version must be the one recorded."""
    data = np.load(path, allow_pickle=False)
    assert str(data["torch_version"]).startswith(TORCH_VERSION), str(data["torch_version"])
    return data
