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
    NAN,
    Choice,
    Flag,
    Hyper,
    Integer,
    KernelSpec,
    OptimizerSpec,
    Real,
    Values,
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

# -- Adam, Adagrad, RMSprop, Adadelta (csrc/adam.c ...; active once they are on main) ------
# References transcribe the kernels' documented formulas in the same operation order, with
# the scalar coefficients computed in double and cast, so most agree bit for bit.

_STEP = Hyper("step", Integer(1, 1 << 62))
_NONNEG = Real(0.0, typical=(0.0, 1.0))
_LR = Hyper("lr", Real(0.0, typical=(0.0, 2.0)))
_EPS = Hyper("eps", Real(0.0, low_open=True, typical=(1e-10, 1.0), edges=(1e-8,)))
_MAXIMIZE = Hyper("maximize", Flag())


def _d(p, g, h, l2=True):
    """The gradient the update uses: -g if maximize, plus L2 and L1 terms."""
    t = p.dtype.type
    d = -g if h.get("maximize") else g.copy()
    wd = float(h.get("weight_decay", 0.0))
    if l2 and wd:
        d = d + t(wd) * p
    l1 = float(h.get("l1", 0.0))
    if l1:
        d = d + t(l1) * sign(p)
    return d


def max_nan(a, b):
    """fastopt's max: a if a > b or a is NaN, else b."""
    return np.where((a > b) | (a != a), a, b)


def adam_rule(p, g, m, v, vmax, h, step):
    t = p.dtype.type
    lr, b1, b2 = float(h["lr"]), float(h["beta1"]), float(h["beta2"])
    decoupled = bool(h.get("decoupled", False))
    d = _d(p, g, h, l2=not decoupled)
    if decoupled and float(h.get("weight_decay", 0.0)):
        p *= t(1.0 - lr * float(h["weight_decay"]))
    m[...] = t(b1) * m + t(1.0 - b1) * d
    v[...] = t(b2) * v + t(1.0 - b2) * d * d
    hi = v
    if vmax is not None:
        vmax[...] = max_nan(vmax, v)
        hi = vmax
    step_size = t(lr / (1.0 - b1 ** step))
    bc2 = t(np.sqrt(1.0 - b2 ** step))
    p -= step_size * m / (np.sqrt(hi) / bc2 + t(float(h["eps"])))


def adagrad_rule(p, g, s, h, step):
    t = p.dtype.type
    clr = t(float(h["lr"]) / (1.0 + (step - 1) * float(h.get("lr_decay", 0.0))))
    d = _d(p, g, h)
    s += d * d
    p -= clr * d / (np.sqrt(s) + t(float(h["eps"])))


def rmsprop_rule(p, g, sq, ga, buf, h):
    t = p.dtype.type
    alpha, eps = float(h["alpha"]), float(h["eps"])
    d = _d(p, g, h)
    sq[...] = t(alpha) * sq + t(1.0 - alpha) * d * d
    w = sq
    if h.get("centered"):
        ga[...] = t(alpha) * ga + t(1.0 - alpha) * d
        w = sq - ga * ga
    in_sqrt = bool(h.get("eps_in_sqrt", False))
    den = np.sqrt(w + t(eps if in_sqrt else 0.0)) + t(0.0 if in_sqrt else eps)
    if float(h.get("momentum", 0.0)):
        buf[...] = t(float(h["momentum"])) * buf + d / den
        p -= t(float(h["lr"])) * buf
    else:
        p -= t(float(h["lr"])) * d / den


def adadelta_rule(p, g, sq, acc, h):
    t = p.dtype.type
    rho, eps = float(h["rho"]), t(float(h["eps"]))
    d = _d(p, g, h)
    sq[...] = t(rho) * sq + t(1.0 - rho) * d * d
    delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * d
    acc[...] = t(rho) * acc + t(1.0 - rho) * delta * delta
    p -= t(float(h["lr"])) * delta


_NONNEG_STATE = Values(0.0, 4.0, specials=(0.0, INF, NAN, 1e30))


def _adam_reference(a, h):
    adam_rule(a["p"], a["g"], a["m"], a["v"], a.get("vmax"), h, int(h["step"]))
    return {k: a[k] for k in ("p", "m", "v", "vmax") if a.get(k) is not None}


def _adagrad_reference(a, h):
    adagrad_rule(a["p"], a["g"], a["state_sum"], h, int(h["step"]))
    return {"p": a["p"], "state_sum": a["state_sum"]}


def _rmsprop_reference(a, h):
    rmsprop_rule(a["p"], a["g"], a["square_avg"], a.get("grad_avg"), a.get("momentum_buffer"),
                 h)
    return {k: a[k] for k in ("p", "square_avg", "grad_avg", "momentum_buffer")
            if a.get(k) is not None}


def _adadelta_reference(a, h):
    adadelta_rule(a["p"], a["g"], a["square_avg"], a["acc_delta"], h)
    return {k: a[k] for k in ("p", "square_avg", "acc_delta")}


def _all_finite_reference(a, h):
    return {"return": bool(np.isfinite(a["x"]).all())}


OPTIM_KERNELS: list[KernelSpec] = []
if hasattr(kernels, "adam_step"):
    OPTIM_KERNELS += [
        KernelSpec(
            name="adam_step", func=kernels.adam_step,
            args=(Arg("p", written=True), Arg("g", written=False),
                  Arg("m", written=True), Arg("v", written=True, values=_NONNEG_STATE),
                  Arg("vmax", written=True, keyword=True, values=_NONNEG_STATE,
                      presence=lambda h: "optional")),
            hypers=(_STEP, _LR, Hyper("beta1", Real(0.0, 1.0, high_open=True)),
                    Hyper("beta2", Real(0.0, 1.0, high_open=True)), _EPS,
                    Hyper("weight_decay", _NONNEG), Hyper("decoupled", Flag()), _MAXIMIZE,
                    Hyper("l1", _NONNEG)),
            reference=_adam_reference, multi=True,
            rtol={np.float32: 1e-5, np.float64: 1e-12},
        ),
        KernelSpec(
            name="adagrad_step", func=kernels.adagrad_step,
            args=(Arg("p", written=True), Arg("g", written=False),
                  Arg("state_sum", written=True, values=_NONNEG_STATE)),
            hypers=(_STEP, _LR, Hyper("lr_decay", _NONNEG), Hyper("weight_decay", _NONNEG),
                    _EPS, _MAXIMIZE, Hyper("l1", _NONNEG)),
            reference=_adagrad_reference, multi=True,
            rtol={np.float32: 1e-5, np.float64: 1e-12},
        ),
        KernelSpec(
            name="rmsprop_step", func=kernels.rmsprop_step,
            args=(Arg("p", written=True), Arg("g", written=False),
                  Arg("square_avg", written=True, values=_NONNEG_STATE),
                  Arg("grad_avg", written=True, keyword=True,
                      presence=lambda h: "required" if h["centered"] else "absent"),
                  Arg("momentum_buffer", written=True, keyword=True,
                      presence=lambda h: "required" if float(h["momentum"]) else "absent")),
            hypers=(_LR, Hyper("alpha", Real(0.0, 1.0)), _EPS, Hyper("weight_decay", _NONNEG),
                    Hyper("momentum", _NONNEG), Hyper("centered", Flag()), _MAXIMIZE,
                    Hyper("l1", _NONNEG), Hyper("eps_in_sqrt", Flag())),
            reference=_rmsprop_reference, multi=True,
            rtol={np.float32: 1e-5, np.float64: 1e-12},
        ),
        KernelSpec(
            name="adadelta_step", func=kernels.adadelta_step,
            args=(Arg("p", written=True), Arg("g", written=False),
                  Arg("square_avg", written=True, values=_NONNEG_STATE),
                  Arg("acc_delta", written=True, values=_NONNEG_STATE)),
            hypers=(_LR, Hyper("rho", Real(0.0, 1.0)), _EPS, Hyper("weight_decay", _NONNEG),
                    _MAXIMIZE, Hyper("l1", _NONNEG)),
            reference=_adadelta_reference, multi=True,
            rtol={np.float32: 1e-5, np.float64: 1e-12},
        ),
    ]
if hasattr(kernels, "all_finite"):
    OPTIM_KERNELS.append(KernelSpec(
        name="all_finite", func=kernels.all_finite, args=(Arg("x", written=False),),
        reference=_all_finite_reference, multi=True,
        combine=lambda parts, h: all(parts)))


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

# -- the other optimizer classes (active once they are on main) -----------------------------


class _Counted(RefOptimizer):
    """Per-parameter update count t (1 on the parameter's first update), as torch."""

    def update(self, p, g, state, o, lr, step):
        state["step"] = t = state.get("step", 0) + 1
        self.rule(p, g, state, {**o, "lr": lr}, t)


class RefAdam(_Counted):
    decoupled = False

    def rule(self, p, g, state, o, t):
        for name in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if o.get("amsgrad")
                                                  else ()):
            state.setdefault(name, np.zeros_like(p))
        b1, b2 = o["betas"]
        adam_rule(p, g, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                  {**o, "beta1": b1, "beta2": b2, "decoupled": self.decoupled}, t)


class RefAdamW(RefAdam):
    decoupled = True


class RefAdagrad(_Counted):
    def rule(self, p, g, state, o, t):
        state.setdefault("sum", np.full_like(p, _f(o, "initial_accumulator_value")))
        adagrad_rule(p, g, state["sum"], o, t)


class RefRMSprop(_Counted):
    def rule(self, p, g, state, o, t):
        for name in ("square_avg", "grad_avg", "momentum_buffer"):
            state.setdefault(name, np.zeros_like(p))
        rmsprop_rule(p, g, state["square_avg"], state["grad_avg"], state["momentum_buffer"], o)


class RefAdadelta(_Counted):
    def rule(self, p, g, state, o, t):
        for name in ("square_avg", "acc_delta"):
            state.setdefault(name, np.zeros_like(p))
        adadelta_rule(p, g, state["square_avg"], state["acc_delta"], o)


def _betas(h):
    """Constructor kwargs from drawn hypers: beta1/beta2 become betas=(beta1, beta2)."""
    h = dict(h)
    if "beta1" in h or "beta2" in h:
        h["betas"] = (h.pop("beta1", 0.9), h.pop("beta2", 0.999))
    return h


def _adam_ref(cls):
    def make(groups):
        return cls([(ps, _betas(o)) for ps, o in groups])
    return make


_ADAM_HYPERS = (_LR, Hyper("beta1", Real(0.0, 1.0, high_open=True)),
                Hyper("beta2", Real(0.0, 1.0, high_open=True)), _EPS,
                Hyper("weight_decay", _NONNEG), Hyper("amsgrad", Flag()), _MAXIMIZE,
                Hyper("l1", _NONNEG))
OTHER_OPTIMIZERS: list[OptimizerSpec] = []
if hasattr(fastopt, "Adam"):
    OTHER_OPTIMIZERS += [
        OptimizerSpec("Adam", fastopt.Adam, _ADAM_HYPERS, _adam_ref(RefAdam), kwargs=_betas,
                      invalid_combos=(({"betas": (0.9,)}, "betas"),),
                      example=dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2,
                                   amsgrad=True)),
        OptimizerSpec("AdamW", fastopt.AdamW, _ADAM_HYPERS, _adam_ref(RefAdamW),
                      kwargs=_betas, example=dict(lr=1e-3, weight_decay=1e-2)),
        OptimizerSpec("Adagrad", fastopt.Adagrad,
                      (_LR, Hyper("lr_decay", _NONNEG), Hyper("weight_decay", _NONNEG),
                       Hyper("initial_accumulator_value", _NONNEG), _EPS, _MAXIMIZE,
                       Hyper("l1", _NONNEG)),
                      RefAdagrad,
                      example=dict(lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1)),
        OptimizerSpec("RMSprop", fastopt.RMSprop,
                      (_LR, Hyper("alpha", Real(0.0, 1.0)), _EPS,
                       Hyper("weight_decay", _NONNEG), Hyper("momentum", _NONNEG),
                       Hyper("centered", Flag()), _MAXIMIZE, Hyper("l1", _NONNEG),
                       Hyper("eps_in_sqrt", Flag())),
                      RefRMSprop, example=dict(lr=1e-3, momentum=0.9, centered=True)),
        OptimizerSpec("Adadelta", fastopt.Adadelta,
                      (_LR, Hyper("rho", Real(0.0, 1.0)), _EPS, Hyper("weight_decay", _NONNEG),
                       _MAXIMIZE, Hyper("l1", _NONNEG)),
                      RefAdadelta, example=dict(lr=1.0, weight_decay=1e-3)),
    ]

# -- the tables ----------------------------------------------------------------------------

KERNELS: list[KernelSpec] = [SGD_STEP, *OPTIM_KERNELS, NORM_REDUCE, SCALE, CLIP_GRAD_NORM]
OPTIMIZERS: list[OptimizerSpec] = [SGD_CLASS, *OTHER_OPTIMIZERS]
