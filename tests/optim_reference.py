"""Plain numpy transcriptions of the documented update rules (torch.optim's algorithms, plus
fastopt's l1 and eps_in_sqrt), one step at a time, in the array's own dtype.

Scalar coefficients (bias corrections, lr / bc1, ...) are computed in double and cast to the
array's dtype, as fastopt and torch do. Each function updates `p` and the arrays of `state`
in place; `state` uses fastopt's state names and is filled with zeros (or `fill`) on first
use. `step` is the 1-based number of this update.
"""

import math

import numpy as np


def direction(p, g, weight_decay, l1, maximize):
    """The gradient the update uses: -g when maximizing, plus the L2 and L1 terms."""
    t = p.dtype.type
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + t(weight_decay) * p
    if l1:
        d = d + t(l1) * np.sign(p)
    return d


def _get(state, name, p, fill=0.0):
    if name not in state:
        state[name] = np.full_like(p, fill)
    return state[name]


def sgd(p, g, state, step, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
        weight_decay=0.0, l1=0.0, maximize=False):
    t = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    if momentum:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = d.copy()
        else:
            b = state["momentum_buffer"]
            b[...] = t(momentum) * b + t(1 - dampening) * d
        b = state["momentum_buffer"]
        d = d + t(momentum) * b if nesterov else b
    p -= t(lr) * d


def adam(p, g, state, step, *, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
         amsgrad=False, maximize=False, l1=0.0, decoupled=False):
    t = p.dtype.type
    beta1, beta2 = betas
    d = direction(p, g, 0.0 if decoupled else weight_decay, l1, maximize)
    if decoupled and weight_decay:
        p *= t(1 - lr * weight_decay)
    m, v = _get(state, "exp_avg", p), _get(state, "exp_avg_sq", p)
    m[...] = t(beta1) * m + t(1 - beta1) * d
    v[...] = t(beta2) * v + t(1 - beta2) * d * d
    if amsgrad:
        vmax = _get(state, "max_exp_avg_sq", p)
        np.maximum(vmax, v, out=vmax)
        v = vmax
    step_size = lr / (1 - beta1 ** step)
    bc2_sqrt = math.sqrt(1 - beta2 ** step)
    p -= t(step_size) * m / (np.sqrt(v) / t(bc2_sqrt) + t(eps))


def adamw(p, g, state, step, *, weight_decay=1e-2, **kw):
    adam(p, g, state, step, weight_decay=weight_decay, decoupled=True, **kw)


def adagrad(p, g, state, step, *, lr, lr_decay=0.0, weight_decay=0.0,
            initial_accumulator_value=0.0, eps=1e-10, maximize=False, l1=0.0):
    t = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    s = _get(state, "sum", p, initial_accumulator_value)
    s += d * d
    clr = lr / (1 + (step - 1) * lr_decay)
    p -= t(clr) * d / (np.sqrt(s) + t(eps))


def rmsprop(p, g, state, step, *, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
            centered=False, maximize=False, l1=0.0, eps_in_sqrt=False):
    t = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    sq = _get(state, "square_avg", p)
    sq[...] = t(alpha) * sq + t(1 - alpha) * d * d
    w = sq
    if centered:
        ga = _get(state, "grad_avg", p)
        ga[...] = t(alpha) * ga + t(1 - alpha) * d
        w = sq - ga * ga
    den = np.sqrt(w + t(eps)) if eps_in_sqrt else np.sqrt(w) + t(eps)
    if momentum:
        b = _get(state, "momentum_buffer", p)
        b[...] = t(momentum) * b + d / den
        p -= t(lr) * b
    else:
        p -= t(lr) * d / den


def adadelta(p, g, state, step, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
             maximize=False, l1=0.0):
    t = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    sq, acc = _get(state, "square_avg", p), _get(state, "acc_delta", p)
    sq[...] = t(rho) * sq + t(1 - rho) * d * d
    delta = np.sqrt(acc + t(eps)) / np.sqrt(sq + t(eps)) * d
    acc[...] = t(rho) * acc + t(1 - rho) * delta * delta
    p -= t(lr) * delta


RULES = {"SGD": sgd, "Adam": adam, "AdamW": adamw, "Adagrad": adagrad, "RMSprop": rmsprop,
         "Adadelta": adadelta}


class ReferenceOptimizer:
    """The reference rules driven like an Optimizer: per-parameter state and step count,
    lr a float or a schedule of the optimizer step count."""

    def __init__(self, name, params, **options):
        self.rule = RULES[name]
        self.params = params
        self.options = options
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
            self.rule(p, g, self.state[k], self.steps[k], lr=lr, **options)
        self.count += 1
