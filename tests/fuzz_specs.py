"""The table of fuzzed kernels and optimizer classes, with their numpy references.

Covering a new kernel is one more entry in KERNELS (its array arguments, hyperparameter
domains and a numpy reference written from the documented formula); a new optimizer class
is one more entry in OPTIMIZERS (a RefOptimizer subclass with its per-parameter update).
References compute in the array's dtype with scalar coefficients computed in double and
then cast, as the kernels do, so most agree bit for bit.
"""

from __future__ import annotations

import numpy as np

import fastopt
from fastopt import _kernels, kernels
from fuzz_harness import (
    INF,
    Arg,
    Choice,
    Flag,
    Hyper,
    KernelSpec,
    OptimizerSpec,
    Real,
    to_float,
)

# -- shared helpers ------------------------------------------------------------------------


def sign(x: np.ndarray) -> np.ndarray:
    """fastopt's sign: (x > 0) - (x < 0), so sign(0) = sign(nan) = 0."""
    t = x.dtype.type
    return (x > 0).astype(t) - (x < 0).astype(t)


def _f(h: dict, name: str, default: float = 0.0) -> float:
    return float(h.get(name, default))


class RefOptimizer:
    """A numpy reference of an optimizer class: groups, lr schedules, lazy per-param state.

    groups: [(params, options)], params being the reference's own copies. Subclasses
    implement update(p, g, state, options, lr, step) for one parameter in place, where
    `step` is the group's step count before this step and `state` a dict that starts
    empty for each parameter.
    """

    def __init__(self, groups):
        self.groups = [(list(ps), dict(opts)) for ps, opts in groups]
        self.steps = [0] * len(self.groups)
        self.state = {}

    def step(self, grads):
        with np.errstate(all="ignore"):  # NaN/Inf gradients are part of the fuzzing
            self._step(grads)

    def _step(self, grads):
        k = 0
        for gi, (params, opts) in enumerate(self.groups):
            lr = opts["lr"](self.steps[gi]) if callable(opts["lr"]) else opts["lr"]
            for p in params:
                g = grads[k]
                if g is not None:
                    g = np.array(g, dtype=p.dtype, order="C")
                    self.update(p, g, self.state.setdefault(k, {}), opts, float(lr),
                                self.steps[gi])
                k += 1
            self.steps[gi] += 1

    def update(self, p, g, state, opts, lr, step):
        raise NotImplementedError


# -- SGD -----------------------------------------------------------------------------------


def sgd_rule(p, g, buf, *, lr, momentum, dampening, nesterov, weight_decay, l1, maximize,
             first_step):
    """torch.optim.SGD's documented algorithm, in the array's dtype (fastopt's sign)."""
    t = p.dtype.type
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + t(weight_decay) * p
    if l1:
        d = d + t(l1) * sign(p)
    if momentum:
        buf[...] = d if first_step else t(momentum) * buf + t(1.0 - dampening) * d
        d = d + t(momentum) * buf if nesterov else buf
    p -= t(lr) * d


SGD_HYPERS = (
    Hyper("lr", Real(0.0, typical=(0.0, 2.0))),
    Hyper("momentum", Real(0.0, typical=(0.0, 1.5))),
    Hyper("dampening", Real(0.0, 1.0)),
    Hyper("nesterov", Flag()),
    Hyper("weight_decay", Real(0.0, typical=(0.0, 1.0))),
    Hyper("l1", Real(0.0, typical=(0.0, 1.0))),
    Hyper("maximize", Flag()),
)


def _sgd_ok(h):
    return not h["nesterov"] or (float(h["momentum"]) > 0 and float(h["dampening"]) == 0)


def _sgd_reference(a, h):
    p, g, buf = a["p"], a["g"], a["buf"]
    opts = {k: (float(v) if k not in ("nesterov", "maximize", "first_step") else bool(v))
            for k, v in h.items()}
    if not opts["momentum"]:
        buf = None
    sgd_rule(p, g, buf, **opts)
    return {"p": p, "buf": buf} if buf is not None else {"p": p}


SGD_STEP = KernelSpec(
    name="sgd_step",
    func=kernels.sgd_step,
    args=(
        Arg("p", written=True),
        Arg("g", written=False),
        Arg("buf", written=True,
            presence=lambda h: "required" if float(h["momentum"]) != 0 else "optional"),
    ),
    hypers=SGD_HYPERS + (Hyper("first_step", Flag()),),
    constraint=_sgd_ok,
    invalid_combos=(
        ({"nesterov": True, "momentum": 0.0}, "nesterov"),
        ({"nesterov": True, "momentum": 0.5, "dampening": 0.5}, "nesterov"),
    ),
    reference=_sgd_reference,
    multi=True,
)


class RefSGD(RefOptimizer):
    def update(self, p, g, state, o, lr, step):
        first = "momentum_buffer" not in state
        buf = state.setdefault("momentum_buffer", np.zeros_like(p))
        sgd_rule(p, g, buf if float(o["momentum"]) else None, lr=lr,
                 momentum=_f(o, "momentum"), dampening=_f(o, "dampening"),
                 nesterov=bool(o.get("nesterov", False)),
                 weight_decay=_f(o, "weight_decay"), l1=_f(o, "l1"),
                 maximize=bool(o.get("maximize", False)), first_step=first)


SGD_CLASS = OptimizerSpec(
    name="SGD",
    cls=fastopt.SGD,
    hypers=SGD_HYPERS,
    reference=RefSGD,
    constraint=_sgd_ok,
    invalid_combos=(({"nesterov": True, "momentum": 0.0}, "nesterov"),),
    example=dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3),
)

# -- global norms and scaling (csrc/norm.c; used by fastopt.train.clip_grad_norm) -------------


def _norm_reference(a, h):
    x = np.abs(a["x"].astype(np.float64))
    p = to_float(h["norm_type"])
    if p == INF:
        value = np.nan if np.isnan(x).any() else (x.max() if x.size else 0.0)
    elif p == 1.0:
        value = x.sum()
    elif p == 2.0:
        value = (x * x).sum()
    else:
        value = (x ** p).sum()
    return {"return": np.float64(value)}


def _norm_combine(parts, h):
    """One number for a list: the NaN-sticky max for norm_type=inf, else the sum."""
    parts = [float(v) for v in parts]
    if any(v != v for v in parts):
        return np.float64(np.nan)
    if to_float(h["norm_type"]) == INF:
        return np.float64(max(parts, default=0.0))
    return np.float64(sum(parts))


NORM_REDUCE = KernelSpec(
    name="norm_reduce",
    func=_kernels.norm_reduce,
    args=(Arg("x", written=False),),
    hypers=(Hyper("norm_type", Real(0.0, INF, low_open=True, allow_inf=True,
                                    typical=(0.1, 4.0), edges=(1.0, 2.0, INF))),),
    reference=_norm_reference,
    multi=True,
    combine=_norm_combine,
    rtol={np.float32: 1e-12, np.float64: 1e-12},
    atol={np.float32: 1e-300, np.float64: 1e-300},
)


def _scale_reference(a, h):
    x = a["x"]
    return {"x": x * x.dtype.type(to_float(h["factor"]))}


SCALE = KernelSpec(
    name="scale_",
    func=_kernels.scale_,
    args=(Arg("x", written=True),),
    hypers=(Hyper("factor", Real(allow_inf=True, allow_nan=True, typical=(-3.0, 3.0),
                                 edges=(0.0, -0.0, 1e300))),),
    reference=_scale_reference,
    multi=True,
)

# -- fastopt.clip_grad_norm (fastopt.train: norm_reduce + scale_, numpy fallback) ----------


def _clip_reference_all(tensors, h):
    p = to_float(h["norm_type"])
    acc = 0.0
    for a in tensors:
        part = _norm_reference({"x": a["grads"]}, {"norm_type": p})["return"]
        acc = _norm_combine([acc, part], {"norm_type": p})
    acc = float(acc)
    norm = acc if p == INF else (np.sqrt(acc) if p == 2.0 else acc ** (1.0 / p))
    coef = to_float(h["max_norm"]) / (norm + 1e-6)
    if coef == coef:
        coef = min(coef, 1.0)
    out = []
    for a in tensors:
        g = a["grads"]
        out.append({"grads": g * g.dtype.type(coef)} if coef != 1.0 else {})
    return out, np.float64(norm)


CLIP_GRAD_NORM = KernelSpec(
    name="clip_grad_norm",
    func=fastopt.clip_grad_norm,
    args=(Arg("grads", written=True, any_layout=True,
              bad_dtypes=("int8", "int64", "bool", "complex128", "object", "U1")),),
    hypers=(
        Hyper("max_norm", Real(0.0, INF, allow_inf=True, typical=(0.0, 20.0))),
        Hyper("norm_type", Real(0.0, INF, low_open=True, allow_inf=True, typical=(0.5, 4.0),
                                edges=(1.0, 2.0, INF))),
        # True raises FloatingPointError on a non-finite norm: tested in
        # test_boundary_regressions, not drawn here
        Hyper("error_if_nonfinite", Choice((False, np.False_), bad=(
            (1, (TypeError,)), ("no", (TypeError,)), (None, (TypeError,))))),
    ),
    reference_all=_clip_reference_all,
    multi=True,
    overlap_checked=False,  # overlapping views are scaled twice (torch does the same)
    dtypes=(np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)),
    rtol={np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12},
    atol={np.float16: 1e-7, np.float32: 1e-30, np.float64: 1e-300},
)

# -- the tables ----------------------------------------------------------------------------

KERNELS: list[KernelSpec] = [SGD_STEP, NORM_REDUCE, SCALE, CLIP_GRAD_NORM]
OPTIMIZERS: list[OptimizerSpec] = [SGD_CLASS]
