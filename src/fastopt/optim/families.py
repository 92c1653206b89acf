"""The optimizer families: one table that states each first-order optimizer once.

A :class:`Family` says what a kernel updates (its state arrays), what it takes (its
hyperparameters with their ranges and defaults, as :mod:`fastopt._validation` constraints),
what it keeps per parameter besides arrays (the step count, NAdam's momentum product) and
what it computes (the documented formula). Its per-element rule is C, in
``csrc/<name>.inc``. Everything else is derived from this table:

- at build time (``setup.py`` renders the templates ``src/fastopt/*.tp``): the Cython
  boundary of every family (``<name>_options``, the functional ``<name>_step`` with its
  docstring, the dispatch to ``fo_<name>_step_f32/f64``, the ``<name>_step_f32/f64`` entry
  points of ``_kernels.pxd``) and the ``.pyi`` stub;
- at import: :mod:`fastopt.kernels`, the state names and option checks of the classes in
  :mod:`fastopt.optim`;
- in the tests: the fuzz specs (valid and invalid values of every hyperparameter come
  from its constraint) and the numpy references (``tests/support/fastopt_testing/optim_reference.py``, keyed by
  family name).

DEVELOPING.md (at the repository root) says how to add a family.

The table is plain data and imports nothing compiled, so the build can read it before the
extension exists.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from fastopt._validation import Bool, Constraint, Int, Real

__all__ = ["REQUIRED", "Hyper", "State", "Scalar", "Check", "Family", "FAMILIES", "STEP_ARG"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a hyperparameter the functional kernel has no default for (``lr``).
REQUIRED: Any = _Required()

_CONDITION = re.compile(r"^(?:(?P<flag>\w+)|(?P<name>\w+) != 0)$")


def _holds(condition: str | None, values: Mapping[str, Any]) -> bool:
    """Whether `condition` ("<flag>" or "<name> != 0"; None: always) holds for `values`."""
    if condition is None:
        return True
    match = _CONDITION.match(condition)
    if match is None:
        raise ValueError(f"condition: expected '<flag>' or '<name> != 0', got {condition!r}")
    if match["flag"]:
        return bool(values[match["flag"]])
    return float(values[match["name"]]) != 0.0


@dataclasses.dataclass(frozen=True)
class Hyper:
    """A hyperparameter of a family's kernel.

    ``name`` is the keyword of the functional kernel, the field of the C options struct and
    the argument of the ``<family>_options`` builder. The C type follows the constraint:
    :class:`Real` is a ``double``, :class:`Bool` an ``int`` flag.
    """

    name: str
    constraint: Constraint
    default: Any = REQUIRED
    doc: str = ""
    #: False for a flag the functional kernel does not take because the presence of a
    #: state argument implies it (Adam's ``amsgrad``: ``vmax`` given or not)
    functional: bool = True

    @property
    def is_flag(self) -> bool:
        return isinstance(self.constraint, Bool)


@dataclasses.dataclass(frozen=True)
class State:
    """A state array: one per parameter, same shape and dtype, updated in place.

    ``name`` is its key in ``Optimizer.state[i]`` and its argument name in the C and
    ``.pxd`` entry points; ``arg`` its argument in the functional kernel. ``used`` says when
    the kernel reads and writes it: always (None), when a flag is set (``"amsgrad"``) or
    when a hyperparameter is non-zero (``"momentum != 0"``). ``values`` says what it holds
    -- ``"signed"`` or ``"nonnegative"`` -- which is what a store in fewer bits needs to know
    (a signed or an unsigned quantization map); ``fill`` its value before the first update:
    a number or the name of a class option (Adagrad's ``initial_accumulator_value``).
    """

    name: str
    arg: str
    doc: str
    used: str | None = None
    values: str = "signed"
    fill: float | str = 0.0
    #: passed by keyword (``vmax=``) rather than positionally in the functional kernel
    keyword: bool = False

    def used_with(self, hypers: Mapping[str, Any]) -> bool:
        """Whether the kernel uses this array with these hyperparameter values."""
        return _holds(self.used, hypers)

    @property
    def flag(self) -> str | None:
        """The flag hyperparameter whose value is this array's presence, if any."""
        match = _CONDITION.match(self.used or "")
        return match["flag"] if match and match["flag"] else None


@dataclasses.dataclass(frozen=True)
class Scalar:
    """Per-parameter scalar state besides the arrays: a 0-d array in ``Optimizer.state[i]``,
    a number in ``state_dict()``. It advances by one update each step the parameter takes
    part in, after the kernel ran (so a failed or skipped step leaves it unchanged):
    ``step`` by one; others through ``advance``, a C function
    ``double f(const fo_<family>_options *, int64_t t, double previous)`` declared in
    ``csrc/optim.h`` (t: the 1-based number of this update)."""

    name: str
    dtype: str            # "int64" or "float64"
    initial: float | int
    constraint: Constraint
    doc: str
    advance: str | None = None   # C function; None for the step count

    @property
    def is_step(self) -> bool:
        return self.name == "step"


@dataclasses.dataclass(frozen=True)
class Check:
    """A rule across hyperparameters: ``when`` (a Python expression over their names, also
    valid Cython over the C fields) must be False; else ValueError naming ``name``.
    ``examples`` are settings it refuses (the fuzz tests try them)."""

    when: str
    name: str
    expected: str
    examples: tuple[dict[str, Any], ...] = ()

    def fails(self, hypers: Mapping[str, Any]) -> bool:
        values = {k: (float(v) if not isinstance(v, (bool, int)) else v)
                  for k, v in hypers.items()}
        return bool(eval(self.when, {"__builtins__": {}}, values))  # noqa: S307 - table data


@dataclasses.dataclass(frozen=True)
class Family:
    """One optimizer family: the kernel ``fo_<name>_step_f32/f64`` and everything said
    about it (see the module docstring)."""

    name: str
    title: str
    formula: str
    states: tuple[State, ...]
    hypers: tuple[Hyper, ...]
    #: the kernel takes the 1-based update number t (``step=``): bias corrections, decays
    takes_step: bool = False
    #: per-parameter scalar state the classes keep ("step" for every family but SGD)
    scalars: tuple[Scalar, ...] = ()
    checks: tuple[Check, ...] = ()
    #: class options that are not kernel hyperparameters (initial values of state arrays)
    class_options: tuple[Hyper, ...] = ()
    notes: str = ""
    #: the Examples section of the functional kernel's docstring (a doctest)
    example: str = ""

    # -- names derived from `name` -------------------------------------------------------
    @property
    def kernel(self) -> str:
        """The functional kernel: ``fastopt.kernels.<name>_step``."""
        return f"{self.name}_step"

    @property
    def builder(self) -> str:
        """The options builder of the boundary: ``fastopt._kernels.<name>_options``."""
        return f"{self.name}_options"

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def counts_steps(self) -> bool:
        return any(s.is_step for s in self.scalars)

    @property
    def real_scalars(self) -> tuple[Scalar, ...]:
        """The scalar state other than the step count (NAdam's mu_product)."""
        return tuple(s for s in self.scalars if not s.is_step)

    def hyper(self, name: str) -> Hyper:
        for h in self.hypers + self.class_options:
            if h.name == name:
                return h
        raise KeyError(f"{self.name} has no hyperparameter {name!r}")

    def state(self, name: str) -> State:
        for s in self.states:
            if name in (s.name, s.arg):
                return s
        raise KeyError(f"{self.name} has no state {name!r}")

    def used_states(self, hypers: Mapping[str, Any]) -> tuple[State, ...]:
        """The state arrays the kernel uses with `hypers` (the others at their defaults)."""
        values = {h.name: h.default for h in self.hypers if h.default is not REQUIRED}
        values.update(hypers)
        return tuple(s for s in self.states if s.used_with(values))

    def fill(self, state: State, options: Mapping[str, Any]) -> float:
        """The value of a new `state` array under class `options`."""
        return float(options[state.fill]) if isinstance(state.fill, str) else state.fill


# -- shared pieces -------------------------------------------------------------------------

NONNEG = Real(0.0)                      # [0, inf)
POSITIVE = Real(0.0, closed="right")    # (0, inf)
UNIT = Real(0.0, 1.0)                   # [0, 1]
DECAY = Real(0.0, 1.0, closed="left")   # [0, 1)


def _lr(default: Any = REQUIRED) -> Hyper:
    return Hyper("lr", NONNEG, default, "learning rate")


def _weight_decay(doc: str = "L2 penalty added to the gradient") -> Hyper:
    return Hyper("weight_decay", NONNEG, 0.0, doc)


L1 = Hyper("l1", NONNEG, 0.0, "L1 penalty: ``l1 * sign(p)`` added to the gradient (sign(0) = 0)")
MAXIMIZE = Hyper("maximize", Bool(), False, "ascend instead of descend")
DECOUPLED = Hyper("decoupled", Bool(), False,
                  "decoupled weight decay (``p *= 1 - lr * weight_decay``, as AdamW) instead of "
                  "L2 in the gradient")
#: The ``step`` argument of the kernels that take the update number (``takes_step``).
STEP_ARG = Hyper("step", Int(1, 1 << 62), REQUIRED, "1-based number of this update")
STEP = Scalar("step", "int64", 0, Int(0),
              "number of updates this parameter has had (torch's per-parameter step)")
_D = "d = (-g if maximize else g) + weight_decay * p + l1 * sign(p)"


# -- the table ----------------------------------------------------------------------------

SGD = Family(
    name="sgd",
    title="SGD with momentum, dampening and Nesterov, as torch.optim.SGD",
    formula=f"""\
{_D}
buf = d                                     if first_step      (momentum > 0)
      momentum * buf + (1 - dampening) * d  otherwise
p  -= lr * (d + momentum * buf if nesterov else buf)          (momentum > 0)
p  -= lr * d                                                   (momentum == 0)""",
    states=(State("momentum_buffer", "buf",
                  "momentum buffers (needed when momentum > 0); with first_step=True "
                  "their old contents are ignored and overwritten by d, as torch "
                  "initialises a buffer to the first gradient",
                  used="momentum != 0"),),
    hypers=(
        _lr(), Hyper("momentum", NONNEG, 0.0, "momentum factor"),
        Hyper("dampening", UNIT, 0.0, "dampening of the momentum"), _weight_decay(), L1,
        Hyper("nesterov", Bool(), False, "Nesterov momentum (needs momentum > 0 and "
                                         "dampening = 0)"),
        MAXIMIZE,
        Hyper("first_step", Bool(), False, "whether this step initialises the buffers"),
    ),
    checks=(Check("nesterov and (momentum == 0 or dampening != 0)", "nesterov",
                  "momentum > 0 and dampening = 0 with nesterov=True",
                  examples=({"nesterov": True, "momentum": 0.0},
                            {"nesterov": True, "momentum": 0.5, "dampening": 0.5})),),
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import sgd_step
>>> p, buf = np.array([1.0, -2.0]), np.zeros(2)
>>> sgd_step(p, 2 * p, buf, lr=0.1, momentum=0.9, first_step=True)
>>> p, buf
(array([ 0.8, -1.6]), array([ 2., -4.]))""",
)

ADAM = Family(
    name="adam",
    title="Adam or AdamW (AMSGrad optional), as torch.optim.Adam and AdamW",
    formula="""\
d    = (-g if maximize else g) + (0 if decoupled else weight_decay) * p + l1 * sign(p)
p    = p * (1 - lr * weight_decay)                            if decoupled   (AdamW)
m    = beta1 * m + (1 - beta1) * d
v    = beta2 * v + (1 - beta2) * d * d
vmax = max(vmax, v)                                           if amsgrad (vmax given)
p   -= lr / (1 - beta1**t) * m / (sqrt(vmax if amsgrad else v) / sqrt(1 - beta2**t) + eps)""",
    states=(
        State("exp_avg", "m", "first moment estimates"),
        State("exp_avg_sq", "v", "second moment estimates", values="nonnegative"),
        State("max_exp_avg_sq", "vmax", "running maximum of v (AMSGrad when given)",
              used="amsgrad", values="nonnegative", keyword=True),
    ),
    hypers=(
        _lr(), Hyper("beta1", DECAY, 0.9, "decay of the first moment"),
        Hyper("beta2", DECAY, 0.999, "decay of the second moment"),
        Hyper("eps", POSITIVE, 1e-8, "added to the bias-corrected sqrt(v) (outside the "
                                     "root, as torch)"),
        _weight_decay("L2 penalty added to the gradient, or the decoupled decay with "
                      "decoupled=True"),
        L1, Hyper("amsgrad", Bool(), False, "AMSGrad", functional=False), DECOUPLED,
        MAXIMIZE,
    ),
    takes_step=True,
    scalars=(STEP,),
    notes="Scalars (``lr / (1 - beta1**t)``, ``sqrt(1 - beta2**t)``, "
          "``1 - lr * weight_decay``) are computed once per call in double, as torch does.",
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import adam_step
>>> p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
>>> adam_step(p, 2 * p, m, v, step=1, lr=0.1)   # the first step moves p by about lr
>>> p
array([ 0.9, -1.9])""",
)

ADAGRAD = Family(
    name="adagrad",
    title="Adagrad, as torch.optim.Adagrad",
    formula=f"""\
{_D}
sum += d * d
p   -= lr / (1 + (t - 1) * lr_decay) * d / (sqrt(sum) + eps)""",
    states=(State("sum", "state_sum", "sums of squared gradients (start from "
                                      "initial_accumulator_value)",
                  values="nonnegative", fill="initial_accumulator_value"),),
    hypers=(
        _lr(), Hyper("lr_decay", NONNEG, 0.0, "learning-rate decay"), _weight_decay(),
        Hyper("eps", POSITIVE, 1e-10, "added outside the square root (torch's placement)"),
        L1, MAXIMIZE,
    ),
    takes_step=True,
    scalars=(STEP,),
    class_options=(Hyper("initial_accumulator_value", NONNEG, 0.0,
                         "initial value of the sums"),),
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import adagrad_step
>>> p, state_sum = np.array([1.0, -2.0]), np.zeros(2)
>>> adagrad_step(p, 2 * p, state_sum, step=1, lr=0.5)
>>> p, state_sum
(array([ 0.5, -1.5]), array([ 4., 16.]))""",
)

RMSPROP = Family(
    name="rmsprop",
    title="RMSprop, as torch.optim.RMSprop (plus eps_in_sqrt)",
    formula=f"""\
{_D}
sq  = alpha * sq + (1 - alpha) * d * d
ga  = alpha * ga + (1 - alpha) * d                       if centered
w   = sq - ga * ga if centered else sq
den = sqrt(w + eps) if eps_in_sqrt else sqrt(w) + eps
buf = momentum * buf + d / den;  p -= lr * buf           if momentum > 0
p  -= lr * d / den                                       otherwise""",
    states=(
        State("square_avg", "square_avg", "running averages of squared gradients",
              values="nonnegative"),
        State("grad_avg", "grad_avg", "running averages of gradients (needed when "
                                      "centered)", used="centered", keyword=True),
        State("momentum_buffer", "momentum_buffer", "momentum buffers (needed when "
                                                    "momentum > 0)",
              used="momentum != 0", keyword=True),
    ),
    hypers=(
        _lr(), Hyper("alpha", UNIT, 0.99, "smoothing constant"),
        Hyper("eps", POSITIVE, 1e-8, "added to the root (or inside it, eps_in_sqrt)"),
        _weight_decay(), Hyper("momentum", NONNEG, 0.0, "momentum factor"), L1,
        Hyper("centered", Bool(), False, "normalize by the estimated variance"), MAXIMIZE,
        Hyper("eps_in_sqrt", Bool(), False, "sqrt(w + eps) (optax, keras) instead of "
                                            "sqrt(w) + eps (torch)"),
    ),
    scalars=(STEP,),
    notes="eps_in_sqrt=False is torch's placement (and cs231n's); True is optax's and "
          "keras' sqrt(v + eps).",
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import rmsprop_step
>>> p, square_avg = np.array([1.0, -2.0]), np.zeros(2)
>>> rmsprop_step(p, 2 * p, square_avg, lr=0.01, alpha=0.75)
>>> p
array([ 0.98, -1.98])""",
)

ADADELTA = Family(
    name="adadelta",
    title="Adadelta, as torch.optim.Adadelta",
    formula=f"""\
{_D}
sq    = rho * sq + (1 - rho) * d * d
delta = sqrt(acc + eps) / sqrt(sq + eps) * d
acc   = rho * acc + (1 - rho) * delta * delta
p    -= lr * delta""",
    states=(
        State("square_avg", "square_avg", "running averages of squared gradients",
              values="nonnegative"),
        State("acc_delta", "acc_delta", "running averages of squared updates",
              values="nonnegative"),
    ),
    hypers=(
        _lr(1.0), Hyper("rho", UNIT, 0.9, "decay of the running averages"),
        Hyper("eps", POSITIVE, 1e-6, "inside both square roots (as torch)"),
        _weight_decay(), L1, MAXIMIZE,
    ),
    scalars=(STEP,),
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import adadelta_step
>>> p, square_avg, acc_delta = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
>>> adadelta_step(p, np.array([3.0, -3.0]), square_avg, acc_delta, rho=0.0, eps=1.0)
>>> np.round(p, 6)
array([ 0.051317, -1.051317])""",
)

NADAM = Family(
    name="nadam",
    title="NAdam (Adam with Nesterov momentum, Dozat 2016), as torch.optim.NAdam",
    formula="""\
d    = (-g if maximize else g) + (0 if decoupled else weight_decay) * p + l1 * sign(p)
p    = p * (1 - lr * weight_decay)                              if decoupled
mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))      (and mu_{t+1} alike)
mu_product *= mu_t
m    = beta1 * m + (1 - beta1) * d
v    = beta2 * v + (1 - beta2) * d * d
den  = sqrt(v / (1 - beta2**t)) + eps
p   -= lr * (1 - mu_t) / (1 - mu_product) * d / den
p   -= lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / den""",
    states=(
        State("exp_avg", "m", "first moment estimates"),
        State("exp_avg_sq", "v", "second moment estimates", values="nonnegative"),
    ),
    hypers=(
        _lr(), Hyper("beta1", DECAY, 0.9, "decay of the first moment"),
        Hyper("beta2", DECAY, 0.999, "decay of the second moment"),
        Hyper("eps", POSITIVE, 1e-8, "added to the bias-corrected root"),
        _weight_decay("L2 penalty added to the gradient, or the decoupled decay with "
                      "decoupled=True"),
        Hyper("momentum_decay", NONNEG, 4e-3, "psi in mu_t's schedule"), L1, DECOUPLED,
        MAXIMIZE,
    ),
    takes_step=True,
    scalars=(STEP, Scalar("mu_product", "float64", 1.0, UNIT,
                          "product of the momentum coefficients mu_1 ... mu_t so far",
                          advance="fo_nadam_mu_product")),
    notes="mu_t, mu_{t+1}, the bias correction and both step sizes are computed once per "
          "call in double, as torch does; mu_product is kept in double (torch keeps it in "
          "its default dtype, float32 unless set otherwise).",
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import nadam_step
>>> p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
>>> mu_product = nadam_step(p, 2 * p, m, v, step=1, mu_product=1.0, lr=0.1)
>>> np.round(p, 4), mu_product
(array([ 0.8944, -1.8944]), 0.45007347359129607)""",
)

LION = Family(
    name="lion",
    title="Lion (Chen et al. 2023, \"Symbolic Discovery of Optimization Algorithms\"), as "
          "optax.lion",
    formula="""\
d  = (-g if maximize else g) + l1 * sign(p)
c  = beta1 * m + (1 - beta1) * d
p -= lr * (sign(c) + weight_decay * p)
m  = beta2 * m + (1 - beta2) * d""",
    states=(State("exp_avg", "m", "momentum (the interpolated gradients)"),),
    hypers=(
        _lr(), Hyper("beta1", UNIT, 0.9, "interpolation of the update direction"),
        Hyper("beta2", UNIT, 0.99, "decay of the momentum"),
        Hyper("weight_decay", NONNEG, 0.0, "decoupled weight decay (scaled by lr)"),
        L1, MAXIMIZE,
    ),
    scalars=(STEP,),
    notes="sign(c) is -1, 0 or +1 and NaN for a NaN c (NaN propagates into p).",
    example="""\
>>> import numpy as np
>>> from fastopt.kernels import lion_step
>>> p, m = np.array([1.0, -2.0, 0.5]), np.zeros(3)
>>> lion_step(p, np.array([3.0, -0.001, 0.0]), m, lr=0.1)   # p moves by lr * sign
>>> p
array([ 0.9, -1.9,  0.5])""",
)

#: Every family, by name, in the order the boundary and the docs list them.
FAMILIES: dict[str, Family] = {f.name: f for f in (SGD, ADAM, ADAGRAD, RMSPROP, ADADELTA,
                                                   NADAM, LION)}
