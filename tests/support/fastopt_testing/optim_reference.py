"""Plain numpy statements of the optimizer families' rules (fastopt/optim/families.py), one
per family, one step of one tensor at a time, in the array's own dtype: the references the
kernels, the classes and the fuzz specs are tested against.

``RULES[family](p, g, state, t, **hypers)`` updates `p` and the arrays of `state` (a dict
keyed by the family's state names; a missing array is created filled with zeros, or with
`fill`) in place. `t` is the 1-based number of this update; `hypers` use the kernel's
names (``beta1``, ``decoupled``, ...). Scalar coefficients are computed in double and cast
to the array's dtype, as fastopt and torch do, in the kernels' order of operations, so most
results agree bit for bit. Lion's rule is the paper's Algorithm 2 (Chen et al. 2023) as
written, with decoupled weight decay.
"""

import math

import numpy as np

from fastopt.optim.families import FAMILIES


def sign(x):
    """fastopt's L1 subgradient sign: (x > 0) - (x < 0), so sign(0) = sign(nan) = 0."""
    t = x.dtype.type
    return (x > 0).astype(t) - (x < 0).astype(t)


def max_nan(a, b):
    """fastopt's max: a if a > b or a is NaN, else b."""
    return np.where((a > b) | (a != a), a, b)


def direction(p, g, weight_decay, l1, maximize):
    """The gradient the update uses: -g when maximizing, plus the L2 and L1 terms."""
    t = p.dtype.type
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + t(weight_decay) * p
    if l1:
        d = d + t(l1) * sign(p)
    return d


def _get(state, name, p, fill=0.0):
    if state.get(name) is None:
        state[name] = np.full_like(p, fill)
    return state[name]


def sgd(p, g, state, t, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
        weight_decay=0.0, l1=0.0, maximize=False, first_step=False):
    T = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    if momentum:
        b = _get(state, "momentum_buffer", p)
        b[...] = d if first_step else T(momentum) * b + T(1.0 - dampening) * d
        d = d + T(momentum) * b if nesterov else b
    p -= T(lr) * d


def adam(p, g, state, t, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
         amsgrad=False, decoupled=False, maximize=False, l1=0.0):
    T = p.dtype.type
    d = direction(p, g, 0.0 if decoupled else weight_decay, l1, maximize)
    if decoupled and weight_decay:
        p *= T(1.0 - lr * weight_decay)
    m, v = _get(state, "exp_avg", p), _get(state, "exp_avg_sq", p)
    m[...] = T(beta1) * m + T(1.0 - beta1) * d
    v[...] = T(beta2) * v + T(1.0 - beta2) * d * d
    if amsgrad:
        vmax = _get(state, "max_exp_avg_sq", p)
        vmax[...] = max_nan(vmax, v)
        v = vmax
    step_size = lr / (1.0 - beta1 ** t)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** t)
    p -= T(step_size) * m / (np.sqrt(v) / T(bc2_sqrt) + T(eps))


def adagrad(p, g, state, t, *, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False,
            l1=0.0, fill=0.0):
    T = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    s = _get(state, "sum", p, fill)
    s += d * d
    clr = lr / (1.0 + (t - 1) * lr_decay)
    p -= T(clr) * d / (np.sqrt(s) + T(eps))


def rmsprop(p, g, state, t, *, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
            centered=False, maximize=False, l1=0.0, eps_in_sqrt=False):
    T = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    sq = _get(state, "square_avg", p)
    sq[...] = T(alpha) * sq + T(1.0 - alpha) * d * d
    w = sq
    if centered:
        ga = _get(state, "grad_avg", p)
        ga[...] = T(alpha) * ga + T(1.0 - alpha) * d
        w = sq - ga * ga
    den = np.sqrt(w + T(eps)) if eps_in_sqrt else np.sqrt(w) + T(eps)
    if momentum:
        b = _get(state, "momentum_buffer", p)
        b[...] = T(momentum) * b + d / den
        p -= T(lr) * b
    else:
        p -= T(lr) * d / den


def adadelta(p, g, state, t, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False,
             l1=0.0):
    T = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    sq, acc = _get(state, "square_avg", p), _get(state, "acc_delta", p)
    sq[...] = T(rho) * sq + T(1.0 - rho) * d * d
    delta = np.sqrt(acc + T(eps)) / np.sqrt(sq + T(eps)) * d
    acc[...] = T(rho) * acc + T(1.0 - rho) * delta * delta
    p -= T(lr) * delta


def nadam(p, g, state, t, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
          momentum_decay=4e-3, decoupled=False, maximize=False, l1=0.0):
    """torch.optim.NAdam's _single_tensor_nadam, with fastopt's moment form (beta1 * m +
    (1 - beta1) * d, as its Adam) and mu_product in double."""
    T = p.dtype.type
    d = direction(p, g, 0.0 if decoupled else weight_decay, l1, maximize)
    if decoupled:
        p *= T(1.0 - lr * weight_decay)
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    state["mu_product"] = product = state.get("mu_product", 1.0) * mu
    m, v = _get(state, "exp_avg", p), _get(state, "exp_avg_sq", p)
    m[...] = T(beta1) * m + T(1.0 - beta1) * d
    v[...] = T(beta2) * v + T(1.0 - beta2) * d * d
    den = np.sqrt(v / T(1.0 - beta2 ** t)) + T(eps)
    p -= T(lr * (1.0 - mu) / (1.0 - product)) * d / den
    p -= T(lr * mu_next / (1.0 - product * mu_next)) * m / den


def lion(p, g, state, t, *, lr, beta1=0.9, beta2=0.99, weight_decay=0.0, maximize=False,
         l1=0.0):
    """Chen et al. 2023, Algorithm 2: c = b1 m + (1 - b1) g; p -= lr (sign(c) + wd p);
    m = b2 m + (1 - b2) g (np.sign: a NaN c gives NaN, as the formula says)."""
    T = p.dtype.type
    d = direction(p, g, 0.0, l1, maximize)
    m = _get(state, "exp_avg", p)
    c = T(beta1) * m + T(1.0 - beta1) * d
    p -= T(lr) * (np.sign(c) + T(weight_decay) * p)
    m[...] = T(beta2) * m + T(1.0 - beta2) * d


#: The numpy statement of every family of the table, by family name.
RULES = {"sgd": sgd, "adam": adam, "adagrad": adagrad, "rmsprop": rmsprop,
         "adadelta": adadelta, "nadam": nadam, "lion": lion}
assert set(RULES) == set(FAMILIES), "every family of the table needs its numpy statement"


#: Class options that choose how state is stored, not what the rule computes.
STORAGE_OPTIONS = ("state_dtype", "min_lowprec_size", "state_seed", "param_rounding")


def kernel_hypers(cls, options):
    """A class's group options as its family's kernel hyperparameters (betas -> beta1 and
    beta2, decoupled_weight_decay -> decoupled, AdamW's implied decoupled=True), and the
    fill of its state arrays (Adagrad's initial_accumulator_value)."""
    h = dict(options)
    if "betas" in h:
        h["beta1"], h["beta2"] = h.pop("betas")
    if "decoupled_weight_decay" in h:
        h["decoupled"] = h.pop("decoupled_weight_decay")
    if getattr(cls, "_decoupled", False):
        h["decoupled"] = True
    fill = h.pop("initial_accumulator_value", None)
    if fill is not None:
        h["fill"] = fill
    return h


class ReferenceOptimizer:
    """The reference rules driven like an Optimizer: per-parameter state and step count,
    lr a float or a schedule of the optimizer step count. `name` is a class of
    fastopt.optim (its family's rule and its constructor's defaults are used)."""

    def __init__(self, name, params, **options):
        import inspect

        import fastopt

        cls = getattr(fastopt, name)
        signature = inspect.signature(cls.__init__).parameters
        defaults = {k: v.default for k, v in signature.items()
                    if k not in ("self", "params", "lr") + STORAGE_OPTIONS
                    and v.default is not inspect._empty}
        self.rule = RULES[cls.family.name]
        self.is_sgd = cls.family.name == "sgd"
        self.params = params
        self.options = kernel_hypers(cls, {**defaults, **options})
        self.state = [dict() for _ in params]
        self.steps = [0] * len(params)
        self.count = 0

    def step(self, grads):
        options = dict(self.options)
        lr = options.pop("lr")
        lr = lr(self.count) if callable(lr) else lr
        for k, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            self.steps[k] += 1
            extra = {"first_step": "momentum_buffer" not in self.state[k]} if self.is_sgd else {}
            self.rule(p, g, self.state[k], self.steps[k], lr=lr, **options, **extra)
        self.count += 1
