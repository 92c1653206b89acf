"""The table of fuzzed kernels and optimizer classes, with their numpy references.

Covering a new kernel is one more entry in KERNELS (its array arguments, hyperparameter
domains and a numpy reference written from the documented formula). The optimizer
families' kernels and classes are derived from the table of families
(fastopt/optim/families.py) and their numpy statements (optim_reference.py): a new family
or class needs nothing here but an entry in EXAMPLES.
References compute in the array's dtype with scalar coefficients computed in double and
then cast, as the kernels do, so most agree bit for bit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import fastopt
from fastopt import _kernels, kernels
from fastopt.optim.families import FAMILIES, STEP_ARG
from fastopt_testing import optim_reference as ref
from fastopt_testing.fuzz_harness import (
    HUGE_INT,
    INF,
    NAN,
    Arg,
    Choice,
    Constrained,
    Flag,
    Hyper,
    Integer,
    KernelSpec,
    OptimizerSpec,
    Real,
    Values,
    Words,
    native_copy,
    to_float,
)

# -- the optimizer families: kernels and classes, from the table (fastopt/optim/families.py)
# Each family's functional kernel and each optimizer class is fuzzed from its table entry:
# array arguments from its state arrays, hyperparameters (valid draws and the values to
# refuse) from its constraints, the reference from its numpy statement in
# optim_reference.py. A new family needs no entry here (a new class needs an example).

_NONNEG_STATE = Values(0.0, 4.0, specials=(0.0, INF, NAN, 1e30))


def _domain(constraint, name):
    """Where valid values of an unbounded hyperparameter are drawn (any value is valid)."""
    if type(constraint).__name__ != "Real" or constraint.high is not None:
        return Constrained(constraint)
    if constraint.closed in ("right", "neither"):      # eps: (0, inf)
        return Constrained(constraint, typical=(1e-10, 1.0), edges=(1e-8,))
    return Constrained(constraint, typical=(0.0, 2.0 if name in ("lr", "momentum") else 1.0))


def _plain(value):
    """A drawn hyperparameter as the reference takes it: a bool or a float (or an int)."""
    value = value[()] if isinstance(value, np.ndarray) else value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return int(value) if isinstance(value, (int, np.integer)) else to_float(value)


def _always(presence):
    return lambda h: presence


def _required_when(state):
    """Required when the hyperparameters `h` use the state array, optional otherwise."""
    return lambda h: "required" if state.used_with(h) else "optional"


def _kernel_spec(family):
    f = family
    args = [Arg("p", written=True), Arg("g", written=False)]
    for s in f.states:
        if s.flag and not f.hyper(s.flag).functional:   # its presence is the flag (vmax)
            presence = _always("optional")
        elif s.used:
            presence = _required_when(s)
        else:
            presence = _always("required")
        args.append(Arg(s.arg, written=True, keyword=s.keyword, presence=presence,
                        values=_NONNEG_STATE if s.values == "nonnegative" else Values()))
    hypers = [Hyper(h.name, _domain(h.constraint, h.name)) for h in f.hypers if h.functional]
    if f.takes_step:
        hypers.insert(0, Hyper("step", Constrained(STEP_ARG.constraint)))
    hypers += [Hyper(s.name, Constrained(s.constraint)) for s in f.real_scalars]
    implied = {s.flag: s.arg for s in f.states if s.flag and not f.hyper(s.flag).functional}

    def reference(a, h):
        hypers = {k: _plain(v) for k, v in h.items()}
        t = hypers.pop("step", 0)
        state = {s.name: a.get(s.arg) for s in f.states}
        for s in f.real_scalars:
            state[s.name] = hypers.pop(s.name)
        for flag, arg in implied.items():
            hypers[flag] = a.get(arg) is not None
        with np.errstate(all="ignore"):
            ref.RULES[f.name](a["p"], a["g"], state, t, **hypers)
        out = {"p": a["p"]}
        out.update({s.arg: a[s.arg] for s in f.states if a.get(s.arg) is not None})
        if f.real_scalars:
            out["return"] = state[f.real_scalars[0].name]
        return out

    return KernelSpec(
        name=f.kernel, func=getattr(kernels, f.kernel), args=tuple(args), hypers=tuple(hypers),
        reference=reference, multi=True,
        constraint=lambda h: not any(c.fails({k: _plain(v) for k, v in h.items()})
                                     for c in f.checks),
        invalid_combos=tuple((combo, c.name) for c in f.checks for combo in c.examples),
        # one call returns one value for all its tensors (NAdam's new mu_product): the
        # reference's for any tensor, an empty one when the list is empty
        combine=(lambda parts, h: parts[0] if parts else reference(
            {"p": np.zeros(0), "g": np.zeros(0),
             **{s.arg: np.zeros(0) for s in f.states if not s.used}}, h)["return"])
        if f.real_scalars else None,
        rtol={np.float32: 1e-5, np.float64: 1e-12},
    )


def _all_finite_reference(a, h):
    return {"return": bool(np.isfinite(a["x"]).all())}


OPTIM_KERNELS: list[KernelSpec] = [_kernel_spec(f) for f in FAMILIES.values()]
OPTIM_KERNELS.append(KernelSpec(
    name="all_finite", func=kernels.all_finite, args=(Arg("x", written=False),),
    reference=_all_finite_reference, multi=True,
    combine=lambda parts, h: all(parts)))


class RefOptimizer:
    """A numpy reference of an optimizer class: groups, lr schedules, lazy per-parameter
    state, updated with its family's numpy statement (optim_reference.RULES).

    groups: [(params, options)], params being the reference's own copies and options the
    class's constructor arguments (betas, decoupled_weight_decay, ...).
    """

    def __init__(self, cls, groups):
        self.cls = cls
        self.family = cls.family
        self.groups = [(list(ps), dict(opts)) for ps, opts in groups]
        self.steps = [0] * len(self.groups)
        self.state = {}

    def step(self, grads):
        with np.errstate(all="ignore"):  # NaN/Inf gradients are part of the fuzzing
            self._step(grads)

    def _step(self, grads):
        rule = ref.RULES[self.family.name]
        counted = self.family.counts_steps
        k = 0
        for gi, (params, opts) in enumerate(self.groups):
            lr = opts["lr"](self.steps[gi]) if callable(opts["lr"]) else opts["lr"]
            hypers = {n: _plain(v) for n, v in ref.kernel_hypers(self.cls, opts).items()
                      if n != "lr"}
            for p in params:
                g = grads[k]
                if g is not None:
                    g = np.array(g, dtype=p.dtype, order="C")
                    state = self.state.setdefault(k, {})
                    t = state.get("step", 0) + 1
                    if counted:
                        state["step"] = t
                    extra = ({"first_step": "momentum_buffer" not in state}
                             if self.family.name == "sgd" else {})
                    rule(p, g, state, t, lr=float(_plain(lr)), **hypers, **extra)
                k += 1
            self.steps[gi] += 1


def _betas(h):
    """Constructor kwargs from drawn hypers: beta1/beta2 become betas=(beta1, beta2)."""
    h = dict(h)
    if "beta1" in h or "beta2" in h:
        betas = (h.pop("beta1", 0.9), h.pop("beta2", 0.999))
        h.setdefault("betas", betas)  # an explicit (possibly invalid) betas wins
    return h


#: Typical options of each class (the thread-safety and resume tests use them).
EXAMPLES = {
    "SGD": dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adam": dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2, amsgrad=True),
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
    "Adagrad": dict(lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    "RMSprop": dict(lr=1e-3, momentum=0.9, centered=True),
    "Adadelta": dict(lr=1.0, weight_decay=1e-3),
    "NAdam": dict(lr=2e-3, betas=(0.9, 0.99), weight_decay=1e-2, decoupled_weight_decay=True),
    "Lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1),
}


def _class_spec(name):
    """The OptimizerSpec of a class of fastopt.optim: its constructor's options, each with
    its family's constraint (betas: its two betas; decoupled_weight_decay: decoupled)."""
    import inspect

    cls = getattr(fastopt, name)
    f = cls.family
    hypers = []
    for option in inspect.signature(cls.__init__).parameters:
        if option in ("self", "params") + ref.STORAGE_OPTIONS:   # how state is stored
            continue
        if option == "betas":
            hypers += [Hyper(b, _domain(f.hyper(b).constraint, b)) for b in ("beta1", "beta2")]
        else:
            kernel_name = "decoupled" if option == "decoupled_weight_decay" else option
            hypers.append(Hyper(option, _domain(f.hyper(kernel_name).constraint, option)))

    def kernel_view(h):
        return {k: _plain(v) for k, v in ref.kernel_hypers(cls, _betas(h)).items()
                if not isinstance(v, tuple)}

    combos = tuple((combo, c.name) for c in f.checks for combo in c.examples)
    if "betas" in inspect.signature(cls.__init__).parameters:
        combos += (({"betas": (0.9,)}, "betas"),)
    return OptimizerSpec(
        name=name, cls=cls, hypers=tuple(hypers),
        reference=lambda groups: RefOptimizer(cls, [(ps, _betas(o)) for ps, o in groups]),
        constraint=lambda h: not any(c.fails(kernel_view(h)) for c in f.checks),
        invalid_combos=combos, kwargs=_betas, example=EXAMPLES[name])


OPTIMIZER_CLASSES: list[OptimizerSpec] = [_class_spec(name) for name in fastopt.optim.__all__
                                          if name != "Optimizer"]


# -- fastopt.nn: dropout and batch normalization (csrc/dropout.c, csrc/batchnorm.c) -----------

nn = getattr(fastopt, "nn", None)
_SEEDS = Choice((0, 1, 12345, 2**64 - 1, np.uint64(7), np.int64(3)), bad=(
    (-1, (ValueError,)), (2**64, (ValueError,)), (1.5, (TypeError,)), ("1", (TypeError,)),
    (True, (TypeError,)), (HUGE_INT, (ValueError,))))
_DROPOUT_HYPERS = (
    Hyper("p", Real(0.0, 1.0, high_open=True, edges=(0.5,))),
    Hyper("seed", _SEEDS),
    Hyper("stream", Integer(0, 2**64 - 1)),
    Hyper("pack", Flag()),
)


def _keep_factor(mask, dtype):
    """What each element is multiplied by: 1/(1-p) where kept, 0 where dropped."""
    t = np.dtype(dtype).type
    return np.where(mask.keep(), t(mask.scale), t(0.0))


def _dropout_check(result, before, after, h):
    y, mask = result
    x = before["x"][0]
    out = after["out"][0] if after["out"] else None
    assert y.shape == x.shape
    if not h["training"] or float(h["p"]) == 0.0:  # x itself (any layout), or copied to out
        np.testing.assert_array_equal(y, x)
        assert mask.p == 0.0 and mask.keep().all()
        return
    assert y.dtype == x.dtype
    assert mask.shape == x.shape and mask.p == float(h["p"])
    with np.errstate(all="ignore"):
        expected = x * _keep_factor(mask, x.dtype)
    assert native_copy(np.asarray(y)).tobytes() == np.asarray(expected, x.dtype).tobytes()
    if out is not None:
        assert out.tobytes() == native_copy(np.asarray(y)).tobytes()
    # the same (seed, stream) gives the same mask, whatever the layout or dtype of x
    _, again = nn.dropout(x.astype(np.float64), float(h["p"]), True, h["seed"],
                          stream=h["stream"], pack=not h["pack"])
    assert (again.keep() == mask.keep()).all()


def _dropout_backward(dy, out=None, *, p, seed, stream, pack):
    """dropout_backward with the mask of a forward pass of the same shape."""
    _, mask = nn.dropout(np.zeros(np.shape(dy)), p, True, seed, stream=stream, pack=pack)
    return nn.dropout_backward(dy, mask, out), mask


def _dropout_backward_check(result, before, after, h):
    dx, mask = result
    dy = before["dy"][0]
    with np.errstate(all="ignore"):
        expected = dy * _keep_factor(mask, dy.dtype)
    assert native_copy(np.asarray(dx)).tobytes() == np.asarray(expected, dy.dtype).tobytes()


def _bn_shapes():
    return st.tuples(st.integers(1, 5), st.integers(0, 4),
                     st.lists(st.integers(0, 3), max_size=2)).map(
        lambda t: (t[0], t[1], *t[2]))


def _bn_shape_ok(shape, h):
    n, c, spatial = shape[0], shape[1], int(np.prod(shape[2:], dtype=np.int64))
    return not h["training"] or c == 0 or n * spatial > 1


def _bn_stats(x, rm, rv, h):
    """(mean, invstd) in float64 the output is normalized with, and the expected running
    statistics after the call."""
    xd = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    eps = float(h["eps"])
    if not h["training"]:
        mean = rm.astype(np.float64)
        return mean, 1.0 / np.sqrt(rv.astype(np.float64) + eps), rm, rv
    m = xd.size // max(x.shape[1], 1) if x.shape[1] else 0
    mean = xd.mean(axis=axes) if m else np.zeros(x.shape[1])
    var = ((xd - mean.reshape((1, -1) + (1,) * (x.ndim - 2))) ** 2).mean(axis=axes) \
        if m else np.zeros(x.shape[1])
    torch = h.get("convention", "torch") == "torch"
    w = float(h["momentum"]) if torch else 1.0 - float(h["momentum"])
    if rm is not None and m:
        t = rm.dtype.type
        unbiased = var * m / (m - 1) if torch else var
        rm = ((1.0 - w) * rm.astype(np.float64) + w * mean).astype(t)
        rv = ((1.0 - w) * rv.astype(np.float64) + w * unbiased).astype(t)
    return mean, 1.0 / np.sqrt(var + eps), rm, rv


def _close_scaled(actual, expected, scale, dtype, what):
    """|actual - expected| <= tol * scale elementwise (scale: the magnitudes that were
    combined, so cancellation does not make a correct float32 result look wrong)."""
    tol = 2e-5 if np.dtype(dtype) == np.float32 else 1e-12
    actual = np.asarray(actual, dtype=np.float64)
    err = np.abs(actual - expected)
    bound = tol * (np.abs(scale) + np.abs(expected) + 1e-30)
    assert actual.shape == expected.shape, what
    assert (err <= bound).all(), f"{what}: max error {np.max(err - bound, initial=0)} over"


def _bc(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _bn_check(result, before, after, h):
    y, cache = result
    x, rm0, rv0 = before["x"][0], before["running_mean"][0], before["running_var"][0]
    gamma = before["gamma"][0] if before["gamma"] else None
    beta = before["beta"][0] if before["beta"] else None
    mean, invstd, rm, rv = _bn_stats(x, rm0, rv0, h)
    g = np.ones(x.shape[1]) if gamma is None else gamma.astype(np.float64)
    b = np.zeros(x.shape[1]) if beta is None else beta.astype(np.float64)
    xd = x.astype(np.float64)
    a = _bc(invstd * g, x.ndim)
    expected = (xd - _bc(mean, x.ndim)) * a + _bc(b, x.ndim)
    scale = np.abs(xd * a) + np.abs(_bc(mean, x.ndim) * a) + np.abs(_bc(b, x.ndim))
    assert y.dtype == x.dtype.newbyteorder("=") and y.shape == x.shape
    _close_scaled(y, expected, scale, x.dtype, "batch_norm y")
    if after["out"]:
        assert after["out"][0].tobytes() == np.asarray(y).tobytes()
    _close_scaled(cache.mean, mean, mean, np.float32 if x.dtype.itemsize == 4 else np.float64,
                  "cache.mean")
    _close_scaled(after["running_mean"][0], rm.astype(np.float64), rm, x.dtype,
                  "running_mean")
    _close_scaled(after["running_var"][0], rv.astype(np.float64), rv, x.dtype, "running_var")


_BN_X = Values(-4.0, 4.0, specials=())
_BN_HYPERS = (
    Hyper("training", Flag()),
    Hyper("momentum", Real(0.0, 1.0, none_ok=True)),  # None: cumulative average
    Hyper("eps", Real(0.0, INF, low_open=True, typical=(1e-8, 1.0), edges=(1e-5,))),
    Hyper("convention", Choice(("torch", "cs231n"), bad=(
        ("keras", (ValueError,)), (None, (ValueError, TypeError)), (1, (ValueError, TypeError))))),
)


def _channels(shape):
    return shape[1:2]


def _more_channels(shape):
    """An x shape that no longer matches the channel vectors (spatial axes are free)."""
    return (shape[0], shape[1] + 1, *shape[2:])


def _bn_backward(dy, x, gamma=None, beta=None, out=None, *, training, eps):
    """batch_norm_backward of a forward with running statistics 0 and 1 (eval mode)."""
    c = np.shape(x)[1] if np.ndim(x) >= 2 else 0
    dt = x.dtype if isinstance(x, np.ndarray) and x.dtype.kind == "f" and \
        x.dtype.itemsize in (4, 8) else np.dtype(np.float64)
    rm, rv = np.zeros(c, dt.newbyteorder("=")), np.ones(c, dt.newbyteorder("="))
    _, cache = nn.batch_norm(x, gamma, beta, rm, rv, training, 0.1, eps)
    return nn.batch_norm_backward(dy, cache, out)


def _bn_backward_check(result, before, after, h):
    dx, dgamma, dbeta = result
    dy, x = before["dy"][0].astype(np.float64), before["x"][0]
    gamma = before["gamma"][0] if before["gamma"] else None
    c = x.shape[1]
    mean, invstd, _, _ = _bn_stats(x, np.zeros(c), np.ones(c), {**h, "momentum": 0.1})
    g = np.ones(c) if gamma is None else gamma.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    xhat = (x.astype(np.float64) - _bc(mean, x.ndim)) * _bc(invstd, x.ndim)
    db = dy.sum(axis=axes)
    dg = (dy * xhat).sum(axis=axes)
    m = x.size // c if c else 0
    if h["training"] and m:
        k = _bc(g * invstd / m, x.ndim)
        expected = k * (m * dy - _bc(db, x.ndim) - xhat * _bc(dg, x.ndim))
        scale = np.abs(k) * (m * np.abs(dy) + _bc(np.abs(dy).sum(axis=axes), x.ndim)
                             + np.abs(xhat) * _bc((np.abs(dy * xhat)).sum(axis=axes), x.ndim))
    else:
        expected = _bc(g * invstd, x.ndim) * dy
        scale = expected
    _close_scaled(dx, expected, scale * 10, x.dtype, "dx")
    if gamma is None:
        assert dgamma is None
    else:
        _close_scaled(dgamma, dg, (np.abs(dy * xhat)).sum(axis=axes) * 10, x.dtype, "dgamma")
    if not before["beta"]:
        assert dbeta is None
    else:
        _close_scaled(dbeta, db, np.abs(dy).sum(axis=axes) * 10, x.dtype, "dbeta")


NN_KERNELS: list[KernelSpec] = []
if nn is not None and hasattr(nn, "batch_norm"):
    NN_KERNELS += [
        KernelSpec(
            name="dropout", func=nn.dropout,
            args=(Arg("x", written=False),
                  Arg("out", written=True, keyword=True, presence=lambda h: "optional")),
            hypers=(*_DROPOUT_HYPERS, Hyper("training", Flag())),
            check=_dropout_check, exact_alias_ok=(frozenset(("x", "out")),)),
        KernelSpec(
            name="dropout_backward", func=_dropout_backward,
            args=(Arg("dy", written=False),
                  Arg("out", written=True, keyword=True, presence=lambda h: "optional")),
            hypers=_DROPOUT_HYPERS, check=_dropout_backward_check,
            exact_alias_ok=(frozenset(("dy", "out")),)),
        KernelSpec(
            name="batch_norm", func=nn.batch_norm,
            args=(Arg("x", written=False, values=_BN_X, bad_shape=_more_channels),
                  Arg("gamma", written=False, shape=_channels, values=_BN_X,
                      presence=lambda h: "optional"),
                  Arg("beta", written=False, shape=_channels, values=_BN_X,
                      presence=lambda h: "optional"),
                  Arg("running_mean", written=True, shape=_channels, values=_BN_X),
                  Arg("running_var", written=True, shape=_channels,
                      values=Values(0.0, 4.0, specials=())),
                  Arg("out", written=True, keyword=True, presence=lambda h: "optional")),
            hypers=_BN_HYPERS, check=_bn_check, shapes=_bn_shapes(), shape_ok=_bn_shape_ok,
            large_shape=(4096, 3, 6)),
        KernelSpec(
            name="batch_norm_backward", func=_bn_backward,
            args=(Arg("dy", written=False, values=_BN_X),
                  Arg("x", written=False, values=_BN_X),
                  Arg("gamma", written=False, shape=_channels, values=_BN_X,
                      presence=lambda h: "optional"),
                  Arg("beta", written=False, shape=_channels, values=_BN_X,
                      presence=lambda h: "optional"),
                  Arg("out", written=True, keyword=True, presence=lambda h: "optional")),
            hypers=(Hyper("training", Flag()), _BN_HYPERS[2]),
            check=_bn_backward_check, shapes=_bn_shapes(), shape_ok=_bn_shape_ok,
            large_shape=(4096, 3, 6)),
    ]


# -- linear algebra for the quasi-Newton minimizers (csrc/linalg.c) ---------------------------


def _dot_check(result, before, after, h):
    x, y = before["x"][0].astype(np.float64), before["y"][0].astype(np.float64)
    with np.errstate(all="ignore"):
        terms = x.ravel() * y.ravel()
        expected = terms.sum()
    assert isinstance(result, float)
    if np.isnan(expected) or np.isinf(expected):
        assert repr(result) == repr(float(expected)) or (np.isnan(result) and
                                                         np.isnan(expected))
    else:
        assert abs(result - expected) <= 1e-12 * (np.abs(terms).sum() + 1e-300)


def _axpy_reference(a, h):
    x, y = a["x"], a["y"]
    t = x.dtype.type
    expected = y + t(to_float(h["a"])) * x
    if a.get("out") is not None:
        return {"out": expected, "return": expected}
    return {"y": expected, "return": expected}


def _scal_reference(a, h):
    x = a["x"]
    expected = x * x.dtype.type(to_float(h["a"]))
    return {"x": expected, "return": expected}


def _pair_reference(a, h):
    return {"s": a["x1"] - a["x0"], "y": a["g1"] - a["g0"]}


def _pair_check(result, before, after, h):
    """(s.y, y.y) in float64 of the differences formed in the arrays' dtype."""
    s = (before["x1"][0] - before["x0"][0]).astype(np.float64).ravel()
    y = (before["g1"][0] - before["g0"][0]).astype(np.float64).ravel()
    assert isinstance(result, tuple) and len(result) == 2
    for got, (u, v) in zip(result, ((s, y), (y, y))):
        assert isinstance(got, float)
        with np.errstate(all="ignore"):
            terms = u * v
            expected = terms.sum()
        if not np.isfinite(expected):
            assert repr(got) == repr(float(expected)) or (np.isnan(got) and np.isnan(expected))
        else:
            assert abs(got - expected) <= 1e-12 * (np.abs(terms).sum() + 1e-300)


def _two_loop_check(result, before, after, h):
    g, S, Y, rho = (before[k][0].astype(np.float64) for k in ("g", "S", "Y", "rho"))
    slots, count, newest = S.shape[0], int(h["count"]), int(h["newest"])
    rows = [(newest - k) % slots for k in range(count)]
    q, alpha = g.copy(), {}
    for i in rows:
        alpha[i] = rho[i] * (S[i] @ q)
        q -= alpha[i] * Y[i]
    r = float(h["gamma"]) * q
    for i in reversed(rows):
        r += S[i] * (alpha[i] - rho[i] * (Y[i] @ r))
    if h["negate"]:
        r = -r
    tol = 1e-4 if before["g"][0].dtype == np.float32 else 1e-10
    got = np.asarray(result, np.float64)
    assert got.shape == g.shape
    scale = np.abs(r).max(initial=0.0) + np.abs(g).max(initial=0.0) * float(h["gamma"]) + 1e-30
    assert np.abs(got - r).max(initial=0.0) <= tol * scale
    if after["out"]:
        assert after["out"][0].tobytes() == np.asarray(result).tobytes()


def _ring_shapes():
    return st.tuples(st.integers(3, 4), st.integers(0, 6))


def _vector_of(shape):
    return shape[1:]


def _slots(shape):
    return shape[:1]


_SMALL = Values(-1.0, 1.0, specials=())


def _one_more(shape):
    """A vector argument checked by size only: one element more is wrong."""
    return (int(np.prod(shape, dtype=np.int64)) + 1,)


def _axpy(x, y, *, a, **out):
    return _kernels.axpy(a, x, y, **out)


def _scal(x, *, a):
    return _kernels.scal(a, x)
_CONTIGUOUS = ("contig", "readonly")

LINALG_KERNELS: list[KernelSpec] = []
if hasattr(_kernels, "lbfgs_two_loop"):
    LINALG_KERNELS += [
        KernelSpec(
            name="dot", func=_kernels.dot,
            args=(Arg("x", written=False, bad_shape=_one_more),
                  Arg("y", written=False, bad_shape=_one_more)),
            check=_dot_check),
        KernelSpec(
            name="axpy", func=_axpy,
            args=(Arg("x", written=False, bad_shape=_one_more),
                  Arg("y", written=True, bad_shape=_one_more)),
            hypers=(Hyper("a", Real(allow_inf=True, typical=(-3.0, 3.0))),),
            reference=_axpy_reference, exact_alias_ok=(frozenset(("x", "y")),)),
        KernelSpec(
            name="axpy(out=)", func=_axpy,
            args=(Arg("x", written=False, bad_shape=_one_more),
                  Arg("y", written=False, bad_shape=_one_more),
                  Arg("out", written=True, keyword=True, bad_shape=_one_more)),
            hypers=(Hyper("a", Real(allow_inf=True, typical=(-3.0, 3.0))),),
            reference=_axpy_reference,
            exact_alias_ok=(frozenset(("x", "out")), frozenset(("y", "out")))),
        KernelSpec(
            name="lbfgs_pair", func=_kernels.lbfgs_pair,
            args=(Arg("x1", written=False, bad_shape=_one_more),
                  Arg("x0", written=False, bad_shape=_one_more),
                  Arg("g1", written=False, bad_shape=_one_more),
                  Arg("g0", written=False, bad_shape=_one_more),
                  Arg("s", written=True, bad_shape=_one_more),
                  Arg("y", written=True, bad_shape=_one_more)),
            reference=_pair_reference, check=_pair_check),
        KernelSpec(
            name="scal", func=_scal, args=(Arg("x", written=True),),
            hypers=(Hyper("a", Real(allow_inf=True, typical=(-3.0, 3.0))),),
            reference=_scal_reference),
        KernelSpec(
            name="lbfgs_two_loop", func=_kernels.lbfgs_two_loop,
            args=(Arg("g", written=False, shape=_vector_of, values=_SMALL, bad_shape=_one_more),
                  Arg("S", written=False, values=_SMALL, layouts=_CONTIGUOUS),
                  Arg("Y", written=False, values=_SMALL, layouts=_CONTIGUOUS),
                  Arg("rho", written=False, shape=_slots, dtype=lambda dt: np.float64,
                      values=Values(0.1, 1.0, specials=()), bad_shape=_one_more,
                      layouts=("contig", "strided", "reversed", "readonly", "unaligned")),
                  Arg("out", written=True, keyword=True, shape=_vector_of,
                      presence=lambda h: "optional", bad_shape=_one_more)),
            hypers=(Hyper("gamma", Real(0.0, INF, low_open=True, typical=(0.1, 2.0))),
                    Hyper("count", Choice((0, 1, 2, 3, np.int64(2)), bad=(
                        (-1, (ValueError,)), (9, (ValueError,)), (1.5, (TypeError,)),
                        (HUGE_INT, (ValueError,)), ("1", (TypeError,)),
                        (True, (TypeError,))))),
                    Hyper("newest", Choice((0, 1, 2), bad=((1.5, (TypeError,)),
                                                           (None, (TypeError,))))),
                    Hyper("negate", Flag())),
            invalid_combos=(({"count": 1, "newest": -1}, "newest"),
                            ({"count": 1, "newest": 7}, "newest"),
                            ({"count": 1, "newest": HUGE_INT}, "newest")),
            check=_two_loop_check, shapes=_ring_shapes(), large_shape=(3, 70_001)),
    ]


# -- the vector-free L-BFGS kernels: lbfgs_gram and lbfgs_vf_direction ----------------------
# Base shape (slots, n, k): S and Y are (slots, n), rows holds k row indices (any of the
# first 3 rows, so always < slots; repeats allowed), the float64 tables are (k,) or (k, k).


def _gram_shapes():
    return st.tuples(st.integers(3, 4), st.integers(0, 6), st.integers(0, 4))


def _ring_of(shape):
    return shape[:2]


def _n_of(shape):
    return shape[1:2]


def _k_of(shape):
    return shape[2:3]


def _kk_of(shape):
    return (shape[2], shape[2])


def _row_dtype(dt):
    """Row indices in int32 next to float32 vectors, int64 next to float64 ones."""
    return np.int32 if np.dtype(dt) == np.float32 else np.int64


def _bad_rows(rows, arrays):
    """Row indices out of [0, slots): -1, slots, the dtype's largest."""
    if rows.size == 0:
        return []
    slots = np.shape(arrays["S"])[0]
    out = []
    for how, value in (("-1", -1), ("slots", slots), ("max", np.iinfo(rows.dtype).max)):
        bad = rows.copy()
        bad[-1] = value
        out.append((f"row index {how}", bad))
    return out


def _rows_arg(**kw):
    return Arg("rows", written=False, shape=_k_of, dtype=_row_dtype,
               values=Values(0.0, 2.999, specials=()), empty_any_dtype=True,
               bad_values=_bad_rows,
               bad_dtypes=("bool", "float16", "float32", "float64", "complex64", "object",
                           "U1"), **kw)


def _gram_check(result, before, after, h):
    """Each entry is a dot product accumulated in float64 (non-finite results exactly)."""
    S, Y = (before[k][0].astype(np.float64) for k in ("S", "Y"))
    rows = before["rows"][0].astype(np.int64)
    w = before["w"][0].astype(np.float64).ravel()
    v = before["v"][0].astype(np.float64).ravel() if before["v"] else None
    k = rows.size
    terms = np.zeros((4 * k + 1, w.size))
    with np.errstate(all="ignore"):
        for i, r in enumerate(rows):
            if v is not None:
                terms[4 * i], terms[4 * i + 1] = S[r] * v, Y[r] * v
            terms[4 * i + 2], terms[4 * i + 3] = S[r] * w, Y[r] * w
        terms[4 * k] = w * w
        expected = terms.sum(axis=1)
        bound = 1e-12 * np.abs(terms).sum(axis=1)
    assert isinstance(result, np.ndarray) and result.dtype == np.float64
    assert result.shape == (4 * k + 1,)
    if v is None:
        assert (result[0:4 * k:4] == 0).all() and (result[1:4 * k:4] == 0).all()
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(result[~finite], expected[~finite])
    err = np.abs(result[finite] - expected[finite])
    assert (err <= bound[finite]).all(), f"lbfgs_gram: errors {err} over {bound[finite]}"


def vf_coefficients(rho, SY, YY, Sp, Yp, gamma, negate):
    """The two-loop recursion on the coefficients of q in the basis [p, s_0..s_k-1,
    y_0..y_k-1] (pairs oldest first), every inner product read from the tables as a linear
    functional on that coefficient vector. Returns (c, m): the coefficients of H p, and the
    same recursion on absolute values (the magnitudes rounding errors scale with)."""
    k = rho.size
    # s_i . q in loop 1 (q holds p and the newer y_j), y_i . q in loop 2 (p, every y_j,
    # the older s_j)
    Ls, Ly = np.zeros((k, 2 * k + 1)), np.zeros((k, 2 * k + 1))
    for i in range(k):
        Ls[i, 0], Ly[i, 0] = Sp[i], Yp[i]
        for j in range(k):
            if j > i:
                Ls[i, 1 + k + j] = SY[i, j]
            if j < i:
                Ly[i, 1 + j] = SY[j, i]
            Ly[i, 1 + k + j] = YY[i, j]
    out = []
    for absolute in (False, True):
        f = np.abs if absolute else (lambda x: x)
        c = np.zeros(2 * k + 1)
        c[0] = 1.0 if absolute or not negate else -1.0
        alpha = np.zeros(k)
        for i in reversed(range(k)):
            alpha[i] = f(rho[i]) * (f(Ls[i]) @ c)
            c[1 + k + i] += alpha[i] if absolute else -alpha[i]
        c[0] *= gamma
        c[1 + k:] *= gamma
        for i in range(k):
            beta = f(rho[i]) * (f(Ly[i]) @ c)
            c[1 + i] += alpha[i] + beta if absolute else alpha[i] - beta
        out.append(c)
    return out[0], out[1]


def _vf_check(result, before, after, h):
    p = before["p"][0].astype(np.float64).ravel()
    S, Y = (before[k][0].astype(np.float64) for k in ("S", "Y"))
    rows = before["rows"][0].astype(np.int64)
    c, m = vf_coefficients(*(before[k][0] for k in ("rho", "SY", "YY", "Sp", "Yp")),
                           to_float(h["gamma"]), bool(h["negate"]))
    basis = np.vstack([p[None, :], S[rows], Y[rows]])
    expected = c @ basis
    scale = m @ np.abs(basis)
    dtype = before["p"][0].dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    got = np.asarray(result)
    assert got.dtype == dtype.newbyteorder("=") and got.shape == (p.size,)
    err = np.abs(got.astype(np.float64) - expected)
    assert (err <= tol * scale).all(), f"lbfgs_vf_direction: errors {err} over {tol * scale}"
    if after["out"]:
        assert after["out"][0].tobytes() == got.tobytes()


_TABLE = Values(-1.0, 1.0, specials=())
_TABLE_LAYOUTS = ("contig", "strided", "reversed", "fortran", "readonly", "unaligned")


def _table(name, shape, values=_TABLE):
    """A float64 table of inner products (any layout but byte-swapped: copied if needed)."""
    return Arg(name, written=False, shape=shape, dtype=lambda dt: np.float64, values=values,
               layouts=_TABLE_LAYOUTS)


if hasattr(_kernels, "lbfgs_gram"):
    LINALG_KERNELS += [
        KernelSpec(
            name="lbfgs_gram", func=_kernels.lbfgs_gram,
            args=(Arg("S", written=False, shape=_ring_of, layouts=_CONTIGUOUS),
                  Arg("Y", written=False, shape=_ring_of, layouts=_CONTIGUOUS),
                  _rows_arg(),
                  Arg("v", written=False, shape=_n_of, bad_shape=_one_more,
                      presence=lambda h: "optional"),
                  Arg("w", written=False, shape=_n_of, bad_shape=_one_more)),
            check=_gram_check, shapes=_gram_shapes(), large_shape=(3, 70_001, 3)),
        KernelSpec(
            name="lbfgs_vf_direction", func=_kernels.lbfgs_vf_direction,
            args=(Arg("p", written=False, shape=_n_of, values=_SMALL, bad_shape=_one_more),
                  Arg("S", written=False, shape=_ring_of, values=_SMALL, layouts=_CONTIGUOUS),
                  Arg("Y", written=False, shape=_ring_of, values=_SMALL, layouts=_CONTIGUOUS),
                  _rows_arg(),
                  _table("rho", _k_of, Values(0.1, 1.0, specials=())),
                  _table("SY", _kk_of), _table("YY", _kk_of),
                  _table("Sp", _k_of), _table("Yp", _k_of),
                  Arg("out", written=True, keyword=True, shape=_n_of,
                      presence=lambda h: "optional", bad_shape=_one_more)),
            hypers=(Hyper("gamma", Real(0.0, INF, low_open=True, typical=(0.1, 2.0))),
                    Hyper("negate", Flag())),
            check=_vf_check, shapes=_gram_shapes(), large_shape=(3, 70_001, 3)),
    ]


# -- the dense BFGS matrix kernels symv / syr2 (csrc/linalg.inc) -----------------------------
# Base shape (n, n): H is the square matrix, the vectors have n elements.


def _square_shapes():
    return st.integers(0, 6).map(lambda n: (n, n))


def _order_of(shape):
    return shape[:1]


def _symv_check(result, before, after, h):
    """Each element: the row's dot product in float64 (to the rounding of a blocked sum),
    rounded once to the dtype."""
    H, v = before["H"][0], before["v"][0]
    with np.errstate(all="ignore"):
        terms = H.astype(np.float64) * v.astype(np.float64)
        expected = terms.sum(axis=1)
        got = np.asarray(result, dtype=np.float64)
        assert got.shape == expected.shape and np.asarray(result).dtype == H.dtype
        out_eps = float(np.finfo(H.dtype).eps) if H.dtype == np.float32 else 0.0
        bound = 1e-12 * np.abs(terms).sum(axis=1) + out_eps * np.abs(expected) + 1e-300
        finite = np.isfinite(expected)
        assert (np.abs(got - expected)[finite] <= bound[finite]).all(), (got, expected)
    # a NaN or infinite row sum (a = inf in syr2_symv) comes out NaN or infinite
    assert not np.isfinite(got[~finite]).any(), (got, expected)
    if after["out"]:
        assert after["out"][0].tobytes() == np.asarray(result).tobytes()


def _syr2_reference(a, h):
    """H + a (x y' + y x') in float64, rounded once: the kernel's exact formula."""
    H, x, y = a["H"], a["x"].astype(np.float64), a["y"].astype(np.float64)
    with np.errstate(all="ignore"):
        expected = (H.astype(np.float64) + to_float(h["a"]) * (np.outer(x, y) + np.outer(y, x))
                    ).astype(H.dtype)
    return {"H": expected, "return": expected}


def _syr2(x, y, H, *, a):
    return _kernels.syr2(a, x, y, H)


def _syr2_symv(x, y, H, v, *, a, **out):
    return _kernels.syr2_symv(a, x, y, H, v, **out)


def _syr2_symv_check(result, before, after, h):
    """H updated by syr2's exact formula; the product as symv's of the updated H."""
    arrays = {"H": before["H"][0], "x": before["x"][0], "y": before["y"][0]}
    expected_H = _syr2_reference(arrays, h)["H"]
    assert after["H"][0].tobytes() == expected_H.tobytes()
    _symv_check(result, {"H": [expected_H], "v": before["v"]}, after, h)


if hasattr(_kernels, "symv"):
    LINALG_KERNELS += [
        KernelSpec(
            name="symv", func=_kernels.symv,
            args=(Arg("H", written=False, values=_SMALL, layouts=_CONTIGUOUS),
                  Arg("v", written=False, shape=_order_of, values=_SMALL,
                      bad_shape=_one_more),
                  Arg("out", written=True, keyword=True, shape=_order_of,
                      presence=lambda h: "optional", bad_shape=_one_more)),
            check=_symv_check, shapes=_square_shapes(), large_shape=(200, 200)),
        KernelSpec(
            name="syr2", func=_syr2,
            args=(Arg("x", written=False, shape=_order_of, bad_shape=_one_more),
                  Arg("y", written=False, shape=_order_of, bad_shape=_one_more),
                  Arg("H", written=True)),
            hypers=(Hyper("a", Real(allow_inf=True, typical=(-3.0, 3.0))),),
            reference=_syr2_reference, shapes=_square_shapes(), large_shape=(200, 200)),
    ]
if hasattr(_kernels, "syr2_symv"):
    LINALG_KERNELS.append(KernelSpec(
        name="syr2_symv", func=_syr2_symv,
        args=(Arg("x", written=False, shape=_order_of, values=_SMALL, bad_shape=_one_more),
              Arg("y", written=False, shape=_order_of, values=_SMALL, bad_shape=_one_more),
              Arg("H", written=True, values=_SMALL),
              Arg("v", written=False, shape=_order_of, values=_SMALL, bad_shape=_one_more),
              Arg("out", written=True, keyword=True, shape=_order_of,
                  presence=lambda h: "optional", bad_shape=_one_more)),
        hypers=(Hyper("a", Real(allow_inf=True, typical=(-3.0, 3.0))),),
        check=_syr2_symv_check, shapes=_square_shapes(), large_shape=(200, 200)))


# -- Philox4x32-10 (csrc/philox.h), the generator behind dropout ------------------------------

_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_LO32 = np.uint64(0xFFFFFFFF)


def philox4x32_10_numpy(ctr, key):
    """Random123's Philox4x32-10 in numpy, vectorized: ctr (4, m) and key (2,) words as
    uint64 arrays; returns the (4, m) output words (uint64 holding 32-bit values)."""
    c0, c1, c2, c3 = (np.asarray(w, np.uint64) for w in ctr)
    k0, k1 = int(key[0]), int(key[1])
    for r in range(10):
        if r:
            k0, k1 = (k0 + _PHILOX_W[0]) & 0xFFFFFFFF, (k1 + _PHILOX_W[1]) & 0xFFFFFFFF
        p0, p1 = _PHILOX_M[0] * c0, _PHILOX_M[1] * c2  # < 2**64: no wrap
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & _LO32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & _LO32)
    return np.stack([c0, c1, c2, c3])


def philox_stream_numpy(n, seed, stream):
    """philox_stream's words: element i is word (i % 64) // 16 of the block
    16 * (i // 64) + i % 16, counter (block, stream), key seed (as test_philox's scalar
    reference_stream, vectorized)."""
    i = np.arange(n, dtype=np.uint64)
    block = np.uint64(16) * (i // np.uint64(64)) + i % np.uint64(16)
    word = ((i % np.uint64(64)) // np.uint64(16)).astype(np.intp)
    lo, hi = stream & 0xFFFFFFFF, stream >> 32
    words = philox4x32_10_numpy(
        (block & _LO32, block >> np.uint64(32), np.full(n, lo, np.uint64),
         np.full(n, hi, np.uint64)), (seed & 0xFFFFFFFF, seed >> 32))
    return words[word, np.arange(n)].astype(np.uint32)


def _philox_reference(a, h):
    ctr = [[int(w)] for w in h["ctr"]]
    return {"return": tuple(int(w[0]) for w in philox4x32_10_numpy(ctr, [int(w) for w in
                                                                        h["key"]]))}


def _philox_stream_reference(a, h):
    return {"return": philox_stream_numpy(int(h["n"]), int(h["seed"]), int(h["stream"]))}


PHILOX_KERNELS: list[KernelSpec] = []
if hasattr(_kernels, "philox_stream"):
    PHILOX_KERNELS += [
        KernelSpec(
            name="philox4x32_10", func=_kernels.philox4x32_10, args=(),
            hypers=(Hyper("ctr", Words(4)), Hyper("key", Words(2))),
            reference=_philox_reference, shapes=st.just(())),
        KernelSpec(
            name="philox_stream", func=_kernels.philox_stream, args=(),
            # n >= 2**63 wraps to a negative size: test_fuzz_philox.py (xfail)
            hypers=(Hyper("n", Integer(0, 2**63 - 1, typical_high=3000)),
                    Hyper("seed", _SEEDS), Hyper("stream", Integer(0, 2**64 - 1))),
            reference=_philox_stream_reference, shapes=st.just(()),
            large_hypers={"n": 70_001}),
    ]


# -- memory-bandwidth yardsticks (csrc/bandwidth.c): inputs are never copied ------------------


def _copy_reference(a, h):
    return {"dst": a["src"].copy()}


def _triad_reference(a, h):
    t = a["a"].dtype.type
    return {"a": a["b"] + t(to_float(h["scalar"])) * a["c"]}


STREAM_KERNELS: list[KernelSpec] = []
if hasattr(_kernels, "stream_triad"):
    STREAM_KERNELS += [
        KernelSpec(name="stream_copy", func=_kernels.stream_copy,
                   args=(Arg("dst", written=True),
                         Arg("src", written=False, layouts=_CONTIGUOUS)),
                   reference=_copy_reference),
        KernelSpec(name="stream_triad", func=_kernels.stream_triad,
                   args=(Arg("a", written=True), Arg("b", written=False, layouts=_CONTIGUOUS),
                         Arg("c", written=False, layouts=_CONTIGUOUS)),
                   hypers=(Hyper("scalar", Real(typical=(-3.0, 3.0))),),
                   reference=_triad_reference),
    ]


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

KERNELS: list[KernelSpec] = [*OPTIM_KERNELS, *NN_KERNELS, *LINALG_KERNELS, *PHILOX_KERNELS,
                              *STREAM_KERNELS, NORM_REDUCE, SCALE, CLIP_GRAD_NORM]
OPTIMIZERS: list[OptimizerSpec] = OPTIMIZER_CLASSES
