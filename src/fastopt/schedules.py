"""Learning-rate (and momentum) schedules: pure functions of the optimizer step.

A schedule is a callable ``lr = schedule(step)`` where ``step`` is the number
of optimizer steps already taken (``0`` for the first step). Its value equals
what ``torch.optim.lr_scheduler.<Equivalent>.get_last_lr()[0]`` shows after
``step`` calls of ``scheduler.step()``::

    import fastopt.schedules as S
    sched = S.cosine(0.1, T_max=100)
    sched(0)                     # 0.1
    sched(np.arange(200))        # one call for a whole curve (plotting)
    opt = fastopt.Adam(params, lr=sched)   # the optimizer calls sched(step_count)

Any float option of an optimizer's param group may be a schedule, not only ``lr``:
``betas=(S.one_cycle_momentum(1000), 0.999)``, ``momentum=S.cyclic_momentum(...)``,
``weight_decay=S.cosine(...)``. :func:`one_cycle_momentum` and :func:`cyclic_momentum`
are the momentum torch's ``OneCycleLR`` and ``CyclicLR`` cycle by default
(``cycle_momentum=True``: SGD's ``momentum`` or Adam's ``betas[0]``).

Conventions
-----------
* **Pure.** Schedules hold only their hyperparameters; the optimizer owns the step
  count. Calling a schedule out of order, twice, or from several param groups is
  fine. (:class:`ReduceLROnPlateau` is the one stateful exception.)
* **Arguments.** ``step`` is a non-negative integer (Python ``int`` or numpy
  integer) and gives a Python ``float``; a numpy integer array (or a list of
  integers) gives a ``float64`` array of the same shape, equal element for element
  to the scalar calls. Anything else raises ``TypeError``; negative steps raise
  ``ValueError``. Both messages name ``step``.
* **base_lr.** Schedules that in torch start from the optimizer's initial lr take
  ``base_lr`` as their first argument here.
* **Values.** Each schedule evaluates the closed form that torch itself uses in
  ``_get_closed_form_lr`` (or, where torch has no recursion, its ``get_lr``), with
  the same operation order, so it is bit-for-bit what torch's closed form gives.
  For the torch schedulers that update ``lr`` recursively (``StepLR``,
  ``MultiStepLR``, ``ExponentialLR``, ``ConstantLR``, ``LinearLR``,
  ``PolynomialLR``, ``CosineAnnealingLR`` and chains of them) torch's stepped values
  accumulate one rounding per step; they agree with the closed form to a relative
  ~1e-15 per step taken (the closed form is the more accurate of the two).
* **Deliberate deviations from torch** (each documented where it applies):
  :func:`one_cycle` holds its final value from ``total_steps`` on (torch
  extrapolates once, possibly to a negative lr, then raises); :func:`linear` gives
  exactly ``base_lr * end_factor`` from ``total_iters`` on (torch's closed form can
  round to ``-1e-16``) and allows any factors >= 0; :func:`cyclic`'s
  ``'triangular2'`` underflows instead of raising ``OverflowError`` after 1024
  cycles, and gamma powers that overflow give ``inf``; :func:`cosine_restarts`
  adds ``decay``; :func:`polynomial` adds ``end_lr``; torch's ``cycle_momentum`` is a
  second schedule (:func:`one_cycle_momentum`, :func:`cyclic_momentum`) given as the
  momentum option, where torch's one scheduler writes both.
* **Picklable.** Every schedule is a small class instance with a readable
  ``repr`` (the call that builds it), so optimizer state holding one pickles.
  Schedules nested in :func:`warmup`, :func:`sequential` and :func:`chain` may be
  any callable ``int -> float``; they must be picklable themselves for the
  composite to pickle.
* **Arrays.** Array input is evaluated by looping the scalar formula (about 1 µs
  per element), which keeps array and scalar results identical and torch-exact.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from fastopt._validation import (
    AnyOf,
    CallableConstraint,
    Real,
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_real,
    check_state_dict,
    describe_value,
)

__all__ = [
    "Schedule",
    "ScheduleLike",
    "constant",
    "step_decay",
    "multistep",
    "exponential",
    "cosine",
    "cosine_restarts",
    "linear",
    "polynomial",
    "inverse_sqrt",
    "one_cycle",
    "one_cycle_momentum",
    "cyclic",
    "cyclic_momentum",
    "warmup",
    "sequential",
    "chain",
    "scale_lr_for_batch",
    "ReduceLROnPlateau",
]

#: A learning rate given as a constant or as a callable ``step -> lr``.
ScheduleLike = float | Callable[[int], float]


# --------------------------------------------------------------------------- #
# Argument checking
# --------------------------------------------------------------------------- #


#: What a learning rate may be wherever a schedule is expected: a number >= 0, or a callable
#: ``step -> lr`` (returned as is).
_SCHEDULE_LIKE = AnyOf(Real(0.0), CallableConstraint())


def _decayed(base_lr: float, gamma: float, k: int) -> float:
    """``base_lr * gamma ** k`` (torch's closed form), with ``inf`` instead of OverflowError."""
    try:
        return base_lr * gamma**k
    except OverflowError:  # gamma > 1 and a huge k
        return math.inf if base_lr > 0 else 0.0


def _eval(s: float | Callable[[int], float], step: int) -> float:
    """Value of a constant or a callable schedule at integer ``step``."""
    if isinstance(s, float):
        return s
    return float(s(step))


# --------------------------------------------------------------------------- #
# Base class
# --------------------------------------------------------------------------- #


class Schedule:
    """Base class of fastopt's schedules: a callable ``step -> lr``.

    Subclasses implement ``_value(step: int) -> float`` for a validated Python
    ``int`` step; :meth:`__call__` handles checking and numpy arrays.
    ``_fields`` names the constructor arguments shown by ``repr`` and ``_name`` is
    the factory function that builds the schedule.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt as fo
    >>> sched = fo.schedules.step_decay(0.1, step_size=10)
    >>> isinstance(sched, fo.schedules.Schedule), sched
    (True, step_decay(base_lr=0.1, step_size=10, gamma=0.1))
    >>> sched(np.arange(0, 40, 10))           # an array of steps: an array of rates
    array([0.1   , 0.01  , 0.001 , 0.0001])
    >>> w = np.zeros(3)
    >>> opt = fo.SGD([w], lr=sched)           # the optimizer calls sched(step) each step
    >>> _ = opt.step([np.ones(3)])
    >>> w
    array([-0.1, -0.1, -0.1])
    """

    _name: str = "Schedule"
    _fields: tuple[str, ...] = ()

    def _value(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @overload
    def __call__(self, step: int | np.integer[Any]) -> float: ...

    @overload
    def __call__(self, step: npt.ArrayLike) -> npt.NDArray[np.float64]: ...

    def __call__(self, step: Any) -> Any:
        """Learning rate after ``step`` optimizer steps (scalar or array)."""
        if step.__class__ is int and step >= 0:  # the optimizer's fast path
            return self._value(step)
        return _dispatch(self._value, step)

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{self._name}({args})"


def _dispatch(value: Callable[[int], float], step: Any) -> Any:
    # step is an index: an int (or a numpy integer) or an integer array, never a float (an
    # index that is a float is a bug upstream, as numpy's indexing says)
    if isinstance(step, (numbers.Integral, np.integer)) and not isinstance(step, (bool, np.bool_)):
        s = int(step)
        if s < 0:
            raise ValueError(f"step: expected an int >= 0, got {s}")
        return value(s)
    if isinstance(step, (np.ndarray, list, tuple)):
        arr = np.asarray(step)
        if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
            raise TypeError(
                f"step: expected an int >= 0 or an array of them, got an array of dtype {arr.dtype}"
            )
        if arr.size and arr.min() < 0:
            raise ValueError(f"step: expected values >= 0, got an array with minimum {arr.min()}")
        flat = arr.ravel().tolist()
        return np.array([value(int(s)) for s in flat], dtype=np.float64).reshape(arr.shape)
    raise TypeError(f"step: expected an int >= 0 or an array of them, got {describe_value(step)}")


# --------------------------------------------------------------------------- #
# Simple schedules
# --------------------------------------------------------------------------- #


class _Constant(Schedule):
    _name = "constant"
    _fields = ("base_lr", "factor", "total_iters")

    def __init__(self, base_lr: float, factor: float, total_iters: int) -> None:
        self.base_lr = base_lr
        self.factor = factor
        self.total_iters = total_iters

    def _value(self, step: int) -> float:
        # torch ConstantLR._get_closed_form_lr
        return self.base_lr * (self.factor + (step >= self.total_iters) * (1 - self.factor))


def constant(base_lr: float, factor: float = 1.0, total_iters: int = 0) -> Schedule:
    r"""Constant learning rate, optionally scaled by ``factor`` for the first steps.

    .. math::

        \mathrm{lr}(t) = \mathrm{base\_lr}\cdot\begin{cases}
            \mathrm{factor} & t < \mathrm{total\_iters}\\
            1 & t \ge \mathrm{total\_iters}\end{cases}

    With the defaults this is just ``base_lr``; with ``factor`` and
    ``total_iters`` it is torch's ``ConstantLR``.

    Parameters
    ----------
    base_lr : float
        Learning rate, >= 0.
    factor : float, default 1.0
        Multiplier applied while ``step < total_iters``, >= 0.
    total_iters : int, default 0
        Number of steps the factor applies to, >= 0.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> schedules.constant(0.1)(500)
    0.1
    >>> sched = schedules.constant(0.1, factor=0.5, total_iters=3)   # torch's ConstantLR
    >>> [sched(t) for t in range(5)]
    [0.05, 0.05, 0.05, 0.1, 0.1]
    """
    return _Constant(
        check_real(base_lr, "base_lr", 0.0),
        check_real(factor, "factor", 0.0),
        check_int(total_iters, "total_iters", 0),
    )


class _StepDecay(Schedule):
    _name = "step_decay"
    _fields = ("base_lr", "step_size", "gamma")

    def __init__(self, base_lr: float, step_size: int, gamma: float) -> None:
        self.base_lr = base_lr
        self.step_size = step_size
        self.gamma = gamma

    def _value(self, step: int) -> float:
        return _decayed(self.base_lr, self.gamma, step // self.step_size)


def step_decay(base_lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` steps (torch ``StepLR``).

    .. math::

        \mathrm{lr}(t) = \mathrm{base\_lr}\cdot\gamma^{\lfloor t / \mathrm{step\_size}\rfloor}

    Parameters
    ----------
    base_lr : float
        Initial learning rate, >= 0.
    step_size : int
        Period of the decay in steps, >= 1.
    gamma : float, default 0.1
        Multiplicative decay factor, > 0.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.step_decay(0.1, step_size=30)
    >>> [round(sched(t), 6) for t in (0, 29, 30, 60)]
    [0.1, 0.1, 0.01, 0.001]
    """
    return _StepDecay(
        check_real(base_lr, "base_lr", 0.0),
        check_int(step_size, "step_size", 1),
        check_real(gamma, "gamma", 0.0, closed="right"),
    )


class _MultiStep(Schedule):
    _name = "multistep"
    _fields = ("base_lr", "milestones", "gamma")

    def __init__(self, base_lr: float, milestones: list[int], gamma: float) -> None:
        self.base_lr = base_lr
        self.milestones = milestones
        self.gamma = gamma

    def _value(self, step: int) -> float:
        return _decayed(self.base_lr, self.gamma, bisect_right(self.milestones, step))


def multistep(base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""Multiply the learning rate by ``gamma`` at each milestone (torch ``MultiStepLR``).

    .. math::

        \mathrm{lr}(t) = \mathrm{base\_lr}\cdot\gamma^{\#\{m \in \mathrm{milestones}:\ m \le t\}}

    ResNet's schedule (x0.1 at epochs 30, 60 and 90, stepping once per epoch) is
    ``multistep(0.1, [30, 60, 90])``. A milestone listed twice decays twice, as in torch.

    Parameters
    ----------
    base_lr : float
        Initial learning rate, >= 0.
    milestones : sequence of int
        Steps (>= 0) at which the decay happens; they are sorted.
    gamma : float, default 0.1
        Multiplicative decay factor, > 0.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.multistep(0.1, milestones=[30, 80])
    >>> [round(sched(t), 6) for t in (0, 30, 79, 80)]
    [0.1, 0.01, 0.01, 0.001]
    """
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (Sequence, np.ndarray)):
        raise TypeError(f"milestones: expected a sequence of ints, got {describe_value(milestones)}")
    ms = sorted(check_int(m, f"milestones[{i}]", 0) for i, m in enumerate(milestones))
    return _MultiStep(
        check_real(base_lr, "base_lr", 0.0),
        ms,
        check_real(gamma, "gamma", 0.0, closed="right"),
    )


class _Exponential(Schedule):
    _name = "exponential"
    _fields = ("base_lr", "gamma")

    def __init__(self, base_lr: float, gamma: float) -> None:
        self.base_lr = base_lr
        self.gamma = gamma

    def _value(self, step: int) -> float:
        return _decayed(self.base_lr, self.gamma, step)


def exponential(base_lr: float, gamma: float) -> Schedule:
    r"""Multiply the learning rate by ``gamma`` every step (torch ``ExponentialLR``).

    .. math::

        \mathrm{lr}(t) = \mathrm{base\_lr}\cdot\gamma^{t}

    ``gamma > 1`` gives an exponential ramp (a learning-rate range test).

    Parameters
    ----------
    base_lr : float
        Initial learning rate, >= 0.
    gamma : float
        Multiplicative factor per step, > 0.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.exponential(1e-3, gamma=2.0)      # a range test's ramp
    >>> [sched(t) for t in range(4)]
    [0.001, 0.002, 0.004, 0.008]
    """
    return _Exponential(
        check_real(base_lr, "base_lr", 0.0),
        check_real(gamma, "gamma", 0.0, closed="right"),
    )


class _Cosine(Schedule):
    _name = "cosine"
    _fields = ("base_lr", "T_max", "eta_min", "clamp")

    def __init__(self, base_lr: float, T_max: int, eta_min: float, clamp: bool) -> None:
        self.base_lr = base_lr
        self.T_max = T_max
        self.eta_min = eta_min
        self.clamp = clamp

    def _value(self, step: int) -> float:
        if self.clamp and step >= self.T_max:
            return self.eta_min
        # torch CosineAnnealingLR._get_closed_form_lr, same operation order
        return (
            self.eta_min
            + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2
        )


def cosine(base_lr: float, T_max: int, eta_min: float = 0.0, *, clamp: bool = False) -> Schedule:
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` steps (torch ``CosineAnnealingLR``).

    .. math::

        \mathrm{lr}(t) = \eta_{\min} + \tfrac12(\mathrm{base\_lr} - \eta_{\min})
                         \left(1 + \cos\frac{\pi t}{T_{\max}}\right)

    **Past** ``T_max``: by default the formula is used as is, exactly as torch
    does, so the learning rate climbs back to ``base_lr`` at ``2 T_max`` and keeps
    oscillating with period ``2 T_max``. With ``clamp=True`` the learning rate
    stays at ``eta_min`` for every ``t >= T_max``.

    Parameters
    ----------
    base_lr : float
        Initial (maximum) learning rate, >= 0.
    T_max : int
        Half-period in steps: the learning rate reaches ``eta_min`` at ``t = T_max``. >= 1.
    eta_min : float, default 0.0
        Minimum learning rate, >= 0.
    clamp : bool, default False
        Hold ``eta_min`` after ``T_max`` instead of following the cosine back up.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.cosine(0.1, T_max=100, eta_min=0.001)
    >>> [round(sched(t), 4) for t in (0, 50, 100, 150)]    # past T_max it climbs back, as torch
    [0.1, 0.0505, 0.001, 0.0505]
    >>> schedules.cosine(0.1, T_max=100, clamp=True)(150)
    0.0
    """
    return _Cosine(
        check_real(base_lr, "base_lr", 0.0),
        check_int(T_max, "T_max", 1),
        check_real(eta_min, "eta_min", 0.0),
        check_bool(clamp, "clamp"),
    )


class _CosineRestarts(Schedule):
    _name = "cosine_restarts"
    _fields = ("base_lr", "T_0", "T_mult", "eta_min", "decay")

    def __init__(self, base_lr: float, T_0: int, T_mult: int, eta_min: float, decay: float) -> None:
        self.base_lr = base_lr
        self.T_0 = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.decay = decay

    def _cycle(self, step: int) -> tuple[int, int, int]:
        """(restart index i, T_cur, T_i) for ``step``, in exact integer arithmetic."""
        T_0, T_mult = self.T_0, self.T_mult
        if T_mult == 1:
            i, t_cur = divmod(step, T_0)
            return i, t_cur, T_0
        i, start, t_i = 0, 0, T_0
        while step >= start + t_i:
            start += t_i
            t_i *= T_mult
            i += 1
        return i, step - start, t_i

    def _value(self, step: int) -> float:
        i, t_cur, t_i = self._cycle(step)
        peak = self.base_lr if self.decay == 1.0 else self.base_lr * self.decay**i
        # torch CosineAnnealingWarmRestarts.get_lr, same operation order
        return self.eta_min + (peak - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cosine_restarts(
    base_lr: float,
    T_0: int,
    T_mult: int = 1,
    eta_min: float = 0.0,
    *,
    decay: float = 1.0,
) -> Schedule:
    r"""Cosine annealing with warm restarts, SGDR (torch ``CosineAnnealingWarmRestarts``).

    The ``i``-th cycle (``i = 0, 1, ...``) lasts :math:`T_i = T_0 T_{mult}^i` steps and
    starts at step :math:`S_i = T_0 (T_{mult}^i - 1)/(T_{mult} - 1)` (:math:`S_i = i T_0`
    when :math:`T_{mult} = 1`). With :math:`T_{cur} = t - S_i` for
    :math:`S_i \le t < S_i + T_i`:

    .. math::

        \mathrm{lr}(t) = \eta_{\min} + \tfrac12(\mathrm{base\_lr}\cdot\mathrm{decay}^{i} - \eta_{\min})
                         \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    so every restart step :math:`S_i` jumps back to the (decayed) peak. ``decay``
    is not in torch (``decay=1`` reproduces torch exactly); ``decay=0.5`` halves the
    peak at every restart.

    Parameters
    ----------
    base_lr : float
        Peak learning rate of the first cycle, >= 0.
    T_0 : int
        Length of the first cycle in steps, >= 1.
    T_mult : int, default 1
        Factor by which each cycle is longer than the previous one, >= 1.
    eta_min : float, default 0.0
        Minimum learning rate, >= 0.
    decay : float, default 1.0
        Multiplier of the peak per restart, in (0, 1].

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.cosine_restarts(0.1, T_0=10, T_mult=2)   # cycles of 10, 20, 40 steps
    >>> [round(sched(t), 4) for t in (0, 5, 10, 20, 30)]
    [0.1, 0.05, 0.1, 0.05, 0.1]
    """
    return _CosineRestarts(
        check_real(base_lr, "base_lr", 0.0),
        check_int(T_0, "T_0", 1),
        check_int(T_mult, "T_mult", 1),
        check_real(eta_min, "eta_min", 0.0),
        check_real(decay, "decay", 0.0, 1.0, closed="right"),
    )


class _Linear(Schedule):
    _name = "linear"
    _fields = ("base_lr", "start_factor", "end_factor", "total_iters")

    def __init__(self, base_lr: float, start_factor: float, end_factor: float, total_iters: int) -> None:
        self.base_lr = base_lr
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters

    def _value(self, step: int) -> float:
        if step >= self.total_iters:
            # exactly base_lr * end_factor; torch's closed form can round to e.g. -1e-16 here
            return self.base_lr * self.end_factor
        # torch LinearLR._get_closed_form_lr, same operation order
        return self.base_lr * (
            self.start_factor + (self.end_factor - self.start_factor) * step / self.total_iters
        )


def linear(
    base_lr: float,
    start_factor: float = 1.0 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
) -> Schedule:
    r"""Linear interpolation of a multiplier from ``start_factor`` to ``end_factor`` (torch ``LinearLR``).

    .. math::

        \mathrm{lr}(t) = \mathrm{base\_lr}\left(s + (e - s)\,
                         \frac{\min(t, \mathrm{total\_iters})}{\mathrm{total\_iters}}\right)

    and exactly ``base_lr * end_factor`` from ``total_iters`` on (torch's closed form
    can round to a value one ulp off there, e.g. ``-1e-16`` for ``end_factor=0``;
    before ``total_iters`` the value is bit-identical to it). Unlike torch, the factors
    are only required to be >= 0 (torch needs ``0 < start_factor <= 1`` and
    ``end_factor <= 1`` for its recursive update), so a warmup from 0 or a decay
    from 2x are allowed.

    Parameters
    ----------
    base_lr : float
        Reference learning rate, >= 0.
    start_factor : float, default 1/3
        Multiplier at step 0, >= 0.
    end_factor : float, default 1.0
        Multiplier from ``total_iters`` on, >= 0.
    total_iters : int, default 5
        Number of steps of the linear change, >= 1.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.linear(0.1, start_factor=0.1, end_factor=1.0, total_iters=4)
    >>> [round(sched(t), 4) for t in range(6)]
    [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1]
    """
    return _Linear(
        check_real(base_lr, "base_lr", 0.0),
        check_real(start_factor, "start_factor", 0.0),
        check_real(end_factor, "end_factor", 0.0),
        check_int(total_iters, "total_iters", 1),
    )


class _Polynomial(Schedule):
    _name = "polynomial"
    _fields = ("base_lr", "total_iters", "power", "end_lr")

    def __init__(self, base_lr: float, total_iters: int, power: float, end_lr: float) -> None:
        self.base_lr = base_lr
        self.total_iters = total_iters
        self.power = power
        self.end_lr = end_lr

    def _value(self, step: int) -> float:
        # torch PolynomialLR._get_closed_form_lr when end_lr == 0 (x - 0.0 and
        # x + 0.0 are exact, so the value is bit-identical to torch's)
        decay: float = (1.0 - min(self.total_iters, step) / self.total_iters) ** self.power
        return (self.base_lr - self.end_lr) * decay + self.end_lr


def polynomial(base_lr: float, total_iters: int = 5, power: float = 1.0, *, end_lr: float = 0.0) -> Schedule:
    r"""Polynomial decay to ``end_lr`` over ``total_iters`` steps (torch ``PolynomialLR``).

    .. math::

        \mathrm{lr}(t) = (\mathrm{base\_lr} - \mathrm{end\_lr})
                         \left(1 - \frac{\min(t, \mathrm{total\_iters})}{\mathrm{total\_iters}}\right)^{\mathrm{power}}
                         + \mathrm{end\_lr}

    ``end_lr`` (default 0, torch's behaviour) is the value held from
    ``total_iters`` on, as in optax's ``polynomial_schedule`` and Hugging Face's
    ``lr_end``.

    Parameters
    ----------
    base_lr : float
        Initial learning rate, >= 0.
    total_iters : int, default 5
        Number of decay steps, >= 1.
    power : float, default 1.0
        Exponent of the polynomial, > 0.
    end_lr : float, default 0.0
        Final learning rate, >= 0.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.polynomial(0.1, total_iters=4, power=2.0)
    >>> [round(sched(t), 5) for t in range(6)]
    [0.1, 0.05625, 0.025, 0.00625, 0.0, 0.0]
    """
    return _Polynomial(
        check_real(base_lr, "base_lr", 0.0),
        check_int(total_iters, "total_iters", 1),
        check_real(power, "power", 0.0, closed="right"),
        check_real(end_lr, "end_lr", 0.0),
    )


class _InverseSqrt(Schedule):
    _name = "inverse_sqrt"
    _fields = ("base_lr", "warmup_steps", "d_model", "normalize")

    def __init__(self, base_lr: float, warmup_steps: int, d_model: int | None, normalize: bool) -> None:
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.d_model = d_model
        self.normalize = normalize
        scale = base_lr
        if d_model is not None:
            scale = scale * d_model**-0.5
        if normalize:
            scale = scale * warmup_steps**0.5
        self._scale = scale

    def __getstate__(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _value(self, step: int) -> float:
        s = step + 1
        if self.warmup_steps == 0:
            return self._scale * float(s**-0.5)
        return self._scale * min(float(s**-0.5), s * float(self.warmup_steps**-1.5))


def inverse_sqrt(
    base_lr: float,
    warmup_steps: int = 4000,
    *,
    d_model: int | None = None,
    normalize: bool = False,
) -> Schedule:
    r"""Linear warmup then inverse-square-root decay ("Attention is all you need", eq. 3).

    With :math:`s = t + 1` (the 1-based index of the step about to be taken, so
    the first step has a non-zero learning rate) and :math:`w` = ``warmup_steps``:

    .. math::

        \mathrm{lr}(t) = c \cdot \min\left(s^{-1/2},\ s\, w^{-3/2}\right),\qquad
        c = \mathrm{base\_lr}\cdot d_{model}^{-1/2\ [\text{if } d_{model}]}
            \cdot w^{1/2\ [\text{if normalize}]}

    The learning rate rises linearly for :math:`s \le w` and peaks at step
    ``t = warmup_steps - 1`` (:math:`s = w`) with value :math:`c\, w^{-1/2}`, then decays
    as :math:`c / \sqrt{s}`. The Transformer paper's schedule is
    ``inverse_sqrt(1.0, 4000, d_model=512)``. ``normalize=True`` multiplies by
    :math:`\sqrt{w}` so that the peak equals ``base_lr`` (fairseq's
    ``inverse_sqrt``). ``warmup_steps=0`` means no warmup: :math:`c / \sqrt{s}`.

    Parameters
    ----------
    base_lr : float
        Scale of the schedule, >= 0.
    warmup_steps : int, default 4000
        Warmup length, >= 0 (>= 1 with ``normalize``).
    d_model : int, optional
        Model width; multiplies the schedule by ``d_model ** -0.5``.
    normalize : bool, default False
        Scale so that the peak learning rate is ``base_lr``.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.inverse_sqrt(1e-3, warmup_steps=4, normalize=True)
    >>> [round(sched(t), 6) for t in (0, 3, 15)]          # rise, peak (= base_lr), 1/sqrt decay
    [0.00025, 0.001, 0.0005]
    """
    base_lr = check_real(base_lr, "base_lr", 0.0)
    normalize = check_bool(normalize, "normalize")
    warmup_steps = check_int(warmup_steps, "warmup_steps", 1 if normalize else 0)
    if d_model is not None:
        d_model = check_int(d_model, "d_model", 1)
    return _InverseSqrt(base_lr, warmup_steps, d_model, normalize)


# --------------------------------------------------------------------------- #
# Cyclical schedules
# --------------------------------------------------------------------------- #


class _Phased:
    """Mixin of the one-cycle schedules (torch OneCycleLR's shape): ``_setup`` turns the
    fields into ``(end_step, start, end)`` phases, kept out of the pickled state, that
    ``_anneal_phases`` interpolates."""

    _fields: tuple[str, ...]
    _phases: tuple[tuple[float, float, float], ...]
    total_steps: int
    anneal_strategy: str

    def _setup(self) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def _value(self, step: int) -> float:
        return _anneal_phases(self._phases, step, self.total_steps, self.anneal_strategy)


class _OneCycle(_Phased, Schedule):
    _name = "one_cycle"
    _fields = (
        "max_lr",
        "total_steps",
        "pct_start",
        "anneal_strategy",
        "div_factor",
        "final_div_factor",
        "three_phase",
    )

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float,
        anneal_strategy: str,
        div_factor: float,
        final_div_factor: float,
        three_phase: bool,
    ) -> None:
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        self._setup()

    def _setup(self) -> None:
        # Exactly torch OneCycleLR.__init__'s numbers.
        initial_lr = self.max_lr / self.div_factor
        min_lr = initial_lr / self.final_div_factor
        T, p = self.total_steps, self.pct_start
        if self.three_phase:
            self._phases = (
                (float(p * T) - 1, initial_lr, self.max_lr),
                (float(2 * p * T) - 2, self.max_lr, initial_lr),
                (T - 1, initial_lr, min_lr),
            )
        else:
            self._phases = (
                (float(p * T) - 1, initial_lr, self.max_lr),
                (T - 1, self.max_lr, min_lr),
            )


def _anneal_phases(phases: tuple[tuple[float, float, float], ...], step: int,
                   total_steps: int, strategy: str) -> float:
    """torch OneCycleLR.get_lr's interpolation over ``(end_step, start, end)`` phases, for
    the learning rate and the momentum alike."""
    step = min(step, total_steps - 1)  # hold the final value after the cycle
    start_step = 0.0
    last = len(phases) - 1
    for i, (end_step, start, end) in enumerate(phases):
        if step <= end_step or i == last:
            if end_step == start_step:  # zero-length phase (torch divides by zero)
                return end
            pct = (step - start_step) / (end_step - start_step)
            if strategy == "cos":
                cos_out = math.cos(math.pi * pct) + 1
                return end + (start - end) / 2.0 * cos_out
            return (end - start) * pct + start
        start_step = end_step
    raise AssertionError("unreachable")  # pragma: no cover


def one_cycle(
    max_lr: float,
    total_steps: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> Schedule:
    r"""The 1cycle policy (Smith & Topin, "Super-Convergence"; torch ``OneCycleLR``).

    Let :math:`T` = ``total_steps``, :math:`p` = ``pct_start``,
    :math:`\mathrm{initial} = \mathrm{max\_lr}/\mathrm{div\_factor}` and
    :math:`\mathrm{min} = \mathrm{initial}/\mathrm{final\_div\_factor}`. The schedule is
    made of phases ``(end_step, start_lr, end_lr)``; phase ``k`` covers the steps
    ``end_{k-1} < t <= end_k`` (``end_{-1} = 0``, phase 0 includes ``t = 0``), and
    within it, with :math:`\pi_t = (t - \mathrm{end}_{k-1}) / (\mathrm{end}_k - \mathrm{end}_{k-1})`,

    .. math::

        \mathrm{cos}:\ \mathrm{lr} = e + \tfrac{s - e}{2}\,(1 + \cos \pi\,\pi_t), \qquad
        \mathrm{linear}:\ \mathrm{lr} = (e - s)\,\pi_t + s.

    Two phases (default, fastai): ``(pT - 1, initial, max_lr)``,
    ``(T - 1, max_lr, min)``. Three phases (the paper):
    ``(pT - 1, initial, max_lr)``, ``(2pT - 2, max_lr, initial)``, ``(T - 1, initial, min)``.

    Steps ``0 .. T-1`` give exactly torch's values. **Deviation from torch:**
    for ``t >= T`` the schedule holds its final value ``min`` (the value at
    ``T - 1``), where torch extrapolates the last phase at ``t = T`` (with
    ``'linear'`` that can be negative) and raises after it. A zero-length phase
    (e.g. ``p T = 1``), where torch divides by zero, gives that phase's end value.
    torch's ``cycle_momentum`` (on by default) is :func:`one_cycle_momentum`, given as the
    optimizer's ``momentum`` or ``betas[0]``.

    Parameters
    ----------
    max_lr : float
        Peak learning rate, >= 0.
    total_steps : int, optional
        Number of steps in the cycle, >= 1. Or give ``epochs`` and ``steps_per_epoch``.
    pct_start : float, default 0.3
        Fraction of the cycle spent increasing the learning rate, in [0, 1].
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    div_factor : float, default 25
        ``initial = max_lr / div_factor``, > 0.
    final_div_factor : float, default 1e4
        ``min = initial / final_div_factor``, > 0.
    three_phase : bool, default False
    epochs, steps_per_epoch : int, optional
        ``total_steps = epochs * steps_per_epoch`` when ``total_steps`` is None.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.one_cycle(0.1, total_steps=100)
    >>> [round(sched(t), 9) for t in (0, 29, 99, 150)]    # max_lr / 25, max_lr, then held
    [0.004, 0.1, 4e-07, 4e-07]
    """
    return _OneCycle(
        check_real(max_lr, "max_lr", 0.0),
        _cycle_length(total_steps, epochs, steps_per_epoch),
        check_real(pct_start, "pct_start", 0.0, 1.0),
        check_choice(anneal_strategy, "anneal_strategy", ("cos", "linear")),
        check_real(div_factor, "div_factor", 0.0, closed="right"),
        check_real(final_div_factor, "final_div_factor", 0.0, closed="right"),
        check_bool(three_phase, "three_phase"),
    )


class _OneCycleMomentum(_Phased, Schedule):
    _name = "one_cycle_momentum"
    _fields = (
        "total_steps",
        "pct_start",
        "anneal_strategy",
        "base_momentum",
        "max_momentum",
        "three_phase",
    )

    def __init__(
        self,
        total_steps: int,
        pct_start: float,
        anneal_strategy: str,
        base_momentum: float,
        max_momentum: float,
        three_phase: bool,
    ) -> None:
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.base_momentum = base_momentum
        self.max_momentum = max_momentum
        self.three_phase = three_phase
        self._setup()

    def _setup(self) -> None:
        # torch OneCycleLR's momentum phases: the momentum falls while the lr rises
        lo, hi = self.base_momentum, self.max_momentum
        T, p = self.total_steps, self.pct_start
        if self.three_phase:
            self._phases = ((float(p * T) - 1, hi, lo), (float(2 * p * T) - 2, lo, hi),
                            (T - 1, hi, hi))
        else:
            self._phases = ((float(p * T) - 1, hi, lo), (T - 1, lo, hi))


def one_cycle_momentum(
    total_steps: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    three_phase: bool = False,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> Schedule:
    r"""The momentum of the 1cycle policy: torch ``OneCycleLR``'s ``cycle_momentum``.

    torch's OneCycleLR (``cycle_momentum=True``, its default) also drives the optimizer's
    momentum -- ``momentum`` for SGD and RMSprop, ``betas[0]`` for Adam-like optimizers --
    inversely to the learning rate: from ``max_momentum`` down to ``base_momentum`` while
    the lr rises, then back up. Give this schedule where the option goes, with the same
    ``total_steps``, ``pct_start``, ``anneal_strategy`` and ``three_phase`` as the
    :func:`one_cycle` of the lr::

        lr = one_cycle(0.01, total_steps=1000)
        m = one_cycle_momentum(total_steps=1000)
        fastopt.AdamW(params, lr=lr, betas=(m, 0.999))     # torch: betas[0] cycles
        fastopt.SGD(params, lr=lr, momentum=m)             # torch: momentum cycles

    Phases ``(end_step, start, end)``, interpolated as :func:`one_cycle`'s: two phases
    ``(pT - 1, max, base)``, ``(T - 1, base, max)``; three phases ``(pT - 1, max, base)``,
    ``(2pT - 2, base, max)``, ``(T - 1, max, max)``. Steps ``0 .. T-1`` give exactly
    torch's values; from ``T`` on the final value is held (as :func:`one_cycle`).

    Parameters
    ----------
    total_steps : int, optional
        Number of steps in the cycle, >= 1. Or give ``epochs`` and ``steps_per_epoch``.
    pct_start : float, default 0.3
        Fraction of the cycle spent decreasing the momentum, in [0, 1].
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    base_momentum : float, default 0.85
        Lowest momentum (at the peak learning rate), >= 0.
    max_momentum : float, default 0.95
        Momentum at the start and end of the cycle, >= 0.
    three_phase : bool, default False
    epochs, steps_per_epoch : int, optional
        ``total_steps = epochs * steps_per_epoch`` when ``total_steps`` is None.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> from fastopt import schedules
    >>> m = schedules.one_cycle_momentum(total_steps=100)
    >>> [round(m(t), 4) for t in (0, 29, 99)]          # 0.95 -> 0.85 -> 0.95
    [0.95, 0.85, 0.95]
    >>> opt = fastopt.AdamW([np.ones(3)], lr=schedules.one_cycle(0.01, 100), betas=(m, 0.999))
    >>> opt.step([np.ones(3)])
    True
    """
    return _OneCycleMomentum(
        _cycle_length(total_steps, epochs, steps_per_epoch),
        check_real(pct_start, "pct_start", 0.0, 1.0),
        check_choice(anneal_strategy, "anneal_strategy", ("cos", "linear")),
        check_real(base_momentum, "base_momentum", 0.0),
        check_real(max_momentum, "max_momentum", 0.0),
        check_bool(three_phase, "three_phase"),
    )


def _cycle_length(total_steps: int | None, epochs: int | None,
                  steps_per_epoch: int | None) -> int:
    if total_steps is not None:
        return check_int(total_steps, "total_steps", 1)
    if epochs is not None and steps_per_epoch is not None:
        return check_int(epochs, "epochs", 1) * check_int(steps_per_epoch, "steps_per_epoch", 1)
    raise ValueError("total_steps: expected an int, or both epochs and steps_per_epoch, got None")


class _Cyclic(Schedule):
    _name = "cyclic"
    _fields = ("base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma")

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int,
        step_size_down: int,
        mode: str,
        gamma: float,
        scale_fn: Callable[[float], float] | None,
        scale_mode: str,
    ) -> None:
        self.base_lr = base_lr
        self.max_lr = max_lr
        self.step_size_up = step_size_up
        self.step_size_down = step_size_down
        self.mode = mode
        self.gamma = gamma
        self.scale_fn = scale_fn
        if scale_fn is None:
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.scale_mode = scale_mode
        self._total_size = float(step_size_up) + float(step_size_down)
        self._step_ratio = float(step_size_up) / self._total_size

    def __repr__(self) -> str:
        r = super().__repr__()
        if self.scale_fn is not None:
            r = r[:-1] + f", scale_fn={self.scale_fn!r}, scale_mode={self.scale_mode!r})"
        return r

    def _scale(self, x: float) -> float:
        if self.scale_fn is not None:
            return float(self.scale_fn(x))
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            # torch: 1 / (2.0 ** (x - 1)), the same power of two, but that raises
            # OverflowError after 1024 cycles; this underflows to 0 instead
            return float(2.0 ** (1 - x))
        return float(self.gamma**x)

    def _shape(self, step: int) -> tuple[float, float]:
        """(position in the half cycle in [0, 1], amplitude scale) at `step`: torch
        CyclicLR.get_lr's, same operation order."""
        cycle = math.floor(1 + step / self._total_size)
        x = 1.0 + step / self._total_size - cycle
        if x <= self._step_ratio:
            scale_factor = x / self._step_ratio
        else:
            scale_factor = (x - 1) / (self._step_ratio - 1)
        return scale_factor, self._scale(cycle if self.scale_mode == "cycle" else step)

    def _value(self, step: int) -> float:
        scale_factor, scale = self._shape(step)
        base_height = (self.max_lr - self.base_lr) * scale_factor
        return self.base_lr + base_height * scale


class _CyclicMomentum(_Cyclic):
    """torch CyclicLR's momentum: ``max - (max - base) * h * g``, the lr's shape upside
    down (``base_lr``/``max_lr`` hold the momenta)."""

    _name = "cyclic_momentum"
    _fields = ("base_momentum", "max_momentum", "step_size_up", "step_size_down", "mode",
               "gamma")

    @property
    def base_momentum(self) -> float:
        return self.base_lr

    @property
    def max_momentum(self) -> float:
        return self.max_lr

    def _value(self, step: int) -> float:
        scale_factor, scale = self._shape(step)
        base_height = (self.max_lr - self.base_lr) * scale_factor
        return self.max_lr - base_height * scale


def cyclic(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    *,
    scale_fn: Callable[[float], float] | None = None,
    scale_mode: Literal["cycle", "iterations"] = "cycle",
) -> Schedule:
    r"""Cyclical learning rate (Smith 2017, torch ``CyclicLR``).

    With :math:`L = \mathrm{up} + \mathrm{down}`, :math:`r = \mathrm{up}/L`,
    cycle :math:`c = \lfloor 1 + t/L \rfloor` and position :math:`x = 1 + t/L - c \in [0, 1)`:

    .. math::

        h(x) = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases},\qquad
        \mathrm{lr}(t) = \mathrm{base\_lr} + (\mathrm{max\_lr} - \mathrm{base\_lr})\, h(x)\, g

    with :math:`g = 1` (``'triangular'``), :math:`g = 2^{-(c-1)}` (``'triangular2'``:
    the amplitude halves every cycle) or :math:`g = \gamma^{t}` (``'exp_range'``).
    A custom ``scale_fn`` replaces :math:`g`, evaluated at :math:`c`
    (``scale_mode='cycle'``) or at :math:`t` (``'iterations'``); it must be a
    picklable (module-level) function for the schedule to pickle. torch's
    ``cycle_momentum`` (on by default) is :func:`cyclic_momentum`.

    Parameters
    ----------
    base_lr : float
        Lower learning rate, >= 0.
    max_lr : float
        Upper learning rate, >= 0.
    step_size_up : int, default 2000
        Steps of the increasing half, >= 1.
    step_size_down : int, optional
        Steps of the decreasing half, >= 0; defaults to ``step_size_up``.
    mode : {'triangular', 'triangular2', 'exp_range'}, default 'triangular'
    gamma : float, default 1.0
        Base of ``'exp_range'``'s scaling, in (0, 1].
    scale_fn : callable, optional
        Custom amplitude scaling; overrides ``mode``.
    scale_mode : {'cycle', 'iterations'}, default 'cycle'
        Argument of ``scale_fn``; only used with ``scale_fn``.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.cyclic(0.001, 0.006, step_size_up=5)
    >>> [round(sched(t), 4) for t in (0, 5, 10, 15)]
    [0.001, 0.006, 0.001, 0.006]
    """
    return _Cyclic(check_real(base_lr, "base_lr", 0.0), check_real(max_lr, "max_lr", 0.0),
                   *_cycle_shape(step_size_up, step_size_down, mode, gamma, scale_fn,
                                 scale_mode))


def _cycle_shape(step_size_up: Any, step_size_down: Any, mode: Any, gamma: Any,
                 scale_fn: Any, scale_mode: Any) -> tuple:
    """The checked arguments of a cycle's shape, shared by cyclic and cyclic_momentum."""
    up = check_int(step_size_up, "step_size_up", 1)
    down = up if step_size_down is None else check_int(step_size_down, "step_size_down", 0)
    if scale_fn is not None:
        check_callable(scale_fn, "scale_fn")
    return (up, down, check_choice(mode, "mode", ("triangular", "triangular2", "exp_range")),
            check_real(gamma, "gamma", 0.0, 1.0, closed="right"), scale_fn,
            check_choice(scale_mode, "scale_mode", ("cycle", "iterations")))


def cyclic_momentum(
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    *,
    scale_fn: Callable[[float], float] | None = None,
    scale_mode: Literal["cycle", "iterations"] = "cycle",
) -> Schedule:
    r"""The momentum of torch ``CyclicLR`` (``cycle_momentum=True``, its default).

    The lr's cycle of :func:`cyclic` upside down, between ``base_momentum`` and
    ``max_momentum``, with :math:`h` and :math:`g` as there:

    .. math::

        m(t) = \mathrm{max\_momentum} - (\mathrm{max\_momentum} - \mathrm{base\_momentum})
        \, h(x)\, g

    Give it as the optimizer's ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam-like),
    with the cycle arguments of the lr's :func:`cyclic`; steps give exactly torch's values.

    Parameters
    ----------
    base_momentum : float, default 0.8
        Momentum at the peak learning rate, >= 0.
    max_momentum : float, default 0.9
        Momentum at the lowest learning rate, >= 0.
    step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode
        As :func:`cyclic`'s.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> m = schedules.cyclic_momentum(0.8, 0.9, step_size_up=5)
    >>> [round(m(t), 4) for t in (0, 5, 10)]
    [0.9, 0.8, 0.9]
    """
    return _CyclicMomentum(check_real(base_momentum, "base_momentum", 0.0),
                           check_real(max_momentum, "max_momentum", 0.0),
                           *_cycle_shape(step_size_up, step_size_down, mode, gamma, scale_fn,
                                         scale_mode))


# --------------------------------------------------------------------------- #
# Combinators
# --------------------------------------------------------------------------- #


class _Warmup(Schedule):
    _name = "warmup"
    _fields = ("schedule", "steps", "start_factor", "shift")

    def __init__(self, schedule: float | Callable[[int], float], steps: int, start_factor: float, shift: bool) -> None:
        self.schedule = schedule
        self.steps = steps
        self.start_factor = start_factor
        self.shift = shift

    def _value(self, step: int) -> float:
        if step >= self.steps:
            return _eval(self.schedule, step - self.steps if self.shift else step)
        inner = _eval(self.schedule, 0 if self.shift else step)
        # the LinearLR closed form with end_factor = 1, multiplying the inner value
        return inner * (self.start_factor + (1.0 - self.start_factor) * step / self.steps)


def warmup(
    schedule: ScheduleLike,
    steps: int,
    start_factor: float = 0.0,
    *,
    shift: bool = False,
) -> Schedule:
    r"""Linear warmup multiplying another schedule.

    With :math:`w(t) = s + (1 - s)\,\min(t, \mathrm{steps})/\mathrm{steps}`
    (:math:`s` = ``start_factor``; :math:`w = 1` from ``steps`` on):

    .. math::

        \text{shift=False:}\quad \mathrm{lr}(t) = w(t)\cdot \mathrm{schedule}(t)

        \text{shift=True:}\quad \mathrm{lr}(t) = \begin{cases}
            w(t)\cdot\mathrm{schedule}(0) & t < \mathrm{steps}\\
            \mathrm{schedule}(t - \mathrm{steps}) & t \ge \mathrm{steps}\end{cases}

    ``shift=False`` overlays the warmup on the schedule's first steps (torch
    ``ChainedScheduler([LinearLR(opt, s, 1.0, steps), sched])`` for a multiplicative
    ``sched``); ``shift=True`` starts the schedule after the warmup (torch
    ``SequentialLR([LinearLR(opt, s, 1.0, steps), sched], [steps])``; Hugging Face's
    ``get_*_schedule_with_warmup`` with ``start_factor=0``).

    Parameters
    ----------
    schedule : schedule or float
        The schedule (any callable ``int -> float``) or constant lr to warm up.
    steps : int
        Warmup length, >= 0 (0: no warmup).
    start_factor : float, default 0.0
        Multiplier at step 0, in [0, 1]. With 0 the first step has lr 0.
    shift : bool, default False
        Start ``schedule`` after the warmup instead of under it.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.warmup(schedules.cosine(0.1, T_max=100), steps=10, shift=True)
    >>> [round(sched(t), 4) for t in (0, 5, 10, 60, 110)]
    [0.0, 0.05, 0.1, 0.05, 0.0]
    """
    return _Warmup(
        _SCHEDULE_LIKE.check(schedule, "schedule"),
        check_int(steps, "steps", 0),
        check_real(start_factor, "start_factor", 0.0, 1.0),
        check_bool(shift, "shift"),
    )


class _Sequential(Schedule):
    _name = "sequential"
    _fields = ("schedules", "boundaries")

    def __init__(self, schedules: list[float | Callable[[int], float]], boundaries: list[int]) -> None:
        self.schedules = schedules
        self.boundaries = boundaries

    def _value(self, step: int) -> float:
        i = bisect_right(self.boundaries, step)
        return _eval(self.schedules[i], step - self.boundaries[i - 1] if i else step)


def sequential(schedules: Sequence[ScheduleLike], boundaries: Sequence[int]) -> Schedule:
    r"""Run schedules one after the other (torch ``SequentialLR``).

    With boundaries :math:`b_1 < b_2 < \dots < b_{n-1}`, :math:`b_0 = 0` and
    :math:`i = \#\{k \ge 1 : b_k \le t\}`:

    .. math::

        \mathrm{lr}(t) = \mathrm{schedules}[i](t - b_i)

    Each later schedule starts from its own step 0 at its boundary.

    Parameters
    ----------
    schedules : sequence of schedule or float
        ``n >= 1`` schedules (callables ``int -> float``) or constant learning rates.
    boundaries : sequence of int
        ``n - 1`` strictly increasing steps, >= 1, where the next schedule takes over.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.sequential(
    ...     [schedules.linear(0.1, 0.1, 1.0, total_iters=5), schedules.exponential(0.1, 0.9)],
    ...     boundaries=[5])
    >>> [round(sched(t), 4) for t in (0, 4, 5, 6)]
    [0.01, 0.082, 0.1, 0.09]
    """
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence):
        raise TypeError(f"schedules: expected a sequence of schedules, got {describe_value(schedules)}")
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, (Sequence, np.ndarray)):
        raise TypeError(f"boundaries: expected a sequence of ints, got {describe_value(boundaries)}")
    if len(schedules) < 1:
        raise ValueError("schedules: expected at least one schedule, got none")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries: expected len(schedules) - 1 = {len(schedules) - 1} entries, got {len(boundaries)}"
        )
    scheds = [_SCHEDULE_LIKE.check(s, f"schedules[{i}]") for i, s in enumerate(schedules)]
    bounds = [check_int(b, f"boundaries[{i}]", 1) for i, b in enumerate(boundaries)]
    if any(b1 >= b2 for b1, b2 in zip(bounds, bounds[1:])):
        raise ValueError(f"boundaries: expected strictly increasing values, got {bounds}")
    return _Sequential(scheds, bounds)


class _Chain(Schedule):
    _name = "chain"
    _fields = ("base", "factors")

    def __init__(
        self, base: float | Callable[[int], float], factors: tuple[float | Callable[[int], float], ...]
    ) -> None:
        self.base = base
        self.factors = factors

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, (self.base, *self.factors)))})"

    def _value(self, step: int) -> float:
        lr = _eval(self.base, step)
        for f in self.factors:
            lr = lr * _eval(f, step)
        return lr


def chain(base: ScheduleLike, *factors: ScheduleLike) -> Schedule:
    r"""Product of a learning rate and multiplicative factor schedules (like torch ``ChainedScheduler``).

    .. math::

        \mathrm{lr}(t) = \mathrm{base}(t)\cdot\prod_k \mathrm{factors}_k(t)

    multiplied left to right. ``base`` is a learning rate (float) or a schedule;
    each factor is a float or a schedule giving a *multiplier*, typically one
    built with ``base_lr=1.0``. torch's
    ``ChainedScheduler([ConstantLR(opt, 0.5, 4), ExponentialLR(opt, 0.9)])`` on an
    optimizer with lr 0.1 is ``chain(0.1, constant(1.0, 0.5, 4), exponential(1.0, 0.9))``.
    (torch chains the recursive updates, so its chain equals this product for the
    multiplicative schedulers: constant, step, multistep, exponential, linear,
    polynomial.)

    Parameters
    ----------
    base : schedule or float
        Base learning rate.
    *factors : schedule or float
        Multipliers, each >= 0 when given as a float.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.chain(0.1, schedules.constant(1.0, 0.5, 4),
    ...                         schedules.exponential(1.0, 0.9))
    >>> [round(sched(t), 5) for t in (0, 3, 4)]
    [0.05, 0.03645, 0.06561]
    """
    return _Chain(
        _SCHEDULE_LIKE.check(base, "base"),
        tuple(_SCHEDULE_LIKE.check(f, f"factors[{i}]") for i, f in enumerate(factors)),
    )


@overload
def scale_lr_for_batch(
    lr: float, base_batch: int, batch: int, rule: Literal["linear", "sqrt"] = "linear"
) -> float: ...


@overload
def scale_lr_for_batch(
    lr: Callable[[int], float], base_batch: int, batch: int, rule: Literal["linear", "sqrt"] = "linear"
) -> Schedule: ...


def scale_lr_for_batch(
    lr: ScheduleLike, base_batch: int, batch: int, rule: Literal["linear", "sqrt"] = "linear"
) -> float | Schedule:
    r"""Scale a learning rate tuned at ``base_batch`` to a batch size ``batch``.

    .. math::

        k = \mathrm{batch}/\mathrm{base\_batch}\ (\text{linear}),\quad
        k = \sqrt{\mathrm{batch}/\mathrm{base\_batch}}\ (\text{sqrt}),\qquad
        \mathrm{lr}' = \mathrm{lr}\cdot k

    ``'linear'`` is the linear scaling rule of Goyal et al., "Accurate, Large
    Minibatch SGD" (2017), used with a warmup (:func:`warmup`); ``'sqrt'`` is the
    square-root rule (Krizhevsky 2014; Hoffer et al. 2017), often used with Adam.

    Parameters
    ----------
    lr : float or schedule
        Learning rate or schedule tuned at ``base_batch``.
    base_batch : int
        Reference batch size, >= 1.
    batch : int
        Actual batch size, >= 1.
    rule : {'linear', 'sqrt'}, default 'linear'

    Returns
    -------
    float or Schedule
        A float for a float ``lr``; otherwise ``chain(lr, k)``.

    Examples
    --------
    >>> from fastopt import schedules
    >>> schedules.scale_lr_for_batch(0.1, base_batch=256, batch=1024)
    0.4
    >>> round(schedules.scale_lr_for_batch(1e-3, 256, 1024, rule="sqrt"), 6)
    0.002
    >>> schedules.scale_lr_for_batch(schedules.cosine(0.1, T_max=10), 256, 512)(0)
    0.2
    """
    lr = _SCHEDULE_LIKE.check(lr, "lr")
    base_batch = check_int(base_batch, "base_batch", 1)
    batch = check_int(batch, "batch", 1)
    rule = check_choice(rule, "rule", ("linear", "sqrt"))
    k = batch / base_batch
    if rule == "sqrt":
        k = math.sqrt(k)
    if isinstance(lr, float):
        return lr * k
    return _Chain(lr, (k,))


# --------------------------------------------------------------------------- #
# ReduceLROnPlateau (stateful)
# --------------------------------------------------------------------------- #


class ReduceLROnPlateau(Schedule):
    r"""Reduce the learning rate when a metric stops improving (torch ``ReduceLROnPlateau``).

    The one stateful schedule: call :meth:`update` with the monitored metric (once
    per epoch, say); calling the object, ``sched(step)``, returns the current
    learning rate whatever ``step`` is, so it can be given to an optimizer as ``lr``.
    Its state is one learning rate: for several param groups use one instance per
    group.

    On ``update(metric)``:

    * ``metric`` is *better* than ``best`` if ``metric < best * (1 - threshold)``
      (``mode='min'``, ``threshold_mode='rel'``), ``metric < best - threshold``
      (min, abs), ``metric > best * (1 + threshold)`` (max, rel) or
      ``metric > best + threshold`` (max, abs). ``best`` starts at ``+inf`` (min) or
      ``-inf`` (max). A better metric becomes ``best`` and resets the bad-epoch
      count; otherwise the count grows by one (a NaN metric is never better).
    * while in cooldown (``cooldown_counter > 0``) the counter decreases by one and
      bad epochs are not counted;
    * when the count exceeds ``patience``: ``new = max(lr * factor, min_lr)``, and
      ``lr = new`` if ``lr - new > eps``; then cooldown starts (``cooldown`` updates)
      and the count resets.

    Parameters
    ----------
    base_lr : float
        Initial learning rate, >= 0.
    mode : {'min', 'max'}, default 'min'
        Whether the metric should decrease (a loss) or increase (an accuracy).
    factor : float, default 0.1
        Reduction factor, in [0, 1).
    patience : int, default 10
        Bad updates tolerated before reducing, >= 0.
    threshold : float, default 1e-4
        Minimal significant improvement, >= 0.
    threshold_mode : {'rel', 'abs'}, default 'rel'
    cooldown : int, default 0
        Updates to wait after a reduction before counting bad updates again, >= 0.
    min_lr : float, default 0.0
        Lower bound on the learning rate, >= 0.
    eps : float, default 1e-8
        Reductions smaller than this are skipped, >= 0.

    Examples
    --------
    >>> from fastopt import schedules
    >>> sched = schedules.ReduceLROnPlateau(0.1, patience=2, factor=0.5)
    >>> [sched.update(loss) for loss in (1.0, 0.9, 0.9, 0.9, 0.9)]   # 3 bad epochs > patience
    [0.1, 0.1, 0.1, 0.1, 0.05]
    >>> sched(1234)                        # the current rate, whatever the step
    0.05
    """

    _name = "ReduceLROnPlateau"
    _fields = ("base_lr", "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps")
    _state_fields = ("lr", "best", "num_bad_epochs", "cooldown_counter", "num_updates")

    def __init__(
        self,
        base_lr: float,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.base_lr = check_real(base_lr, "base_lr", 0.0)
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.factor = check_real(factor, "factor", 0.0, 1.0, closed="left")
        self.patience = check_int(patience, "patience", 0)
        self.threshold = check_real(threshold, "threshold", 0.0)
        self.threshold_mode = check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = check_int(cooldown, "cooldown", 0)
        self.min_lr = check_real(min_lr, "min_lr", 0.0)
        self.eps = check_real(eps, "eps", 0.0)
        self.reset()

    def reset(self) -> None:
        """Return to the initial state: ``lr = base_lr``, no history."""
        self.lr = self.base_lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.num_updates = 0

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f"; lr={self.lr!r}, best={self.best!r})"

    def _value(self, step: int) -> float:
        return self.lr

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    @property
    def in_cooldown(self) -> bool:
        """True while bad updates are being ignored after a reduction."""
        return self.cooldown_counter > 0

    def update(self, metric: float) -> float:
        """Record one value of the monitored metric; return the (possibly reduced) lr.

        Parameters
        ----------
        metric : float
            Anything ``float()`` accepts (a Python or numpy scalar, a 0-d array).

        Returns
        -------
        float
            The learning rate to use from now on.
        """
        current = check_real(metric, "metric", allow_inf=True, allow_nan=True)
        self.num_updates += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and state as a plain dict of numbers and strings."""
        return {f: getattr(self, f) for f in self._fields + self._state_fields}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`'s output (validated; nothing changes on error)."""
        check_state_dict(state_dict, self._fields + self._state_fields)
        fresh = ReduceLROnPlateau(**{f: state_dict[f] for f in self._fields})
        fresh.lr = check_real(state_dict["lr"], "state_dict['lr']", 0.0)
        fresh.best = check_real(state_dict["best"], "state_dict['best']", allow_inf=True)
        fresh.num_bad_epochs = check_int(state_dict["num_bad_epochs"], "state_dict['num_bad_epochs']", 0)
        fresh.cooldown_counter = check_int(state_dict["cooldown_counter"], "state_dict['cooldown_counter']", 0)
        fresh.num_updates = check_int(state_dict["num_updates"], "state_dict['num_updates']", 0)
        self.__dict__.update(fresh.__dict__)
