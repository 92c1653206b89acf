"""Stochastic gradient descent with momentum, dampening and Nesterov."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastopt import _kernels
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg, Unit


class SGD(Optimizer):
    r"""Stochastic gradient descent, torch.optim.SGD's update on numpy arrays.

    The update (``buf`` is the state ``momentum_buffer``; ``first_step`` is a parameter's
    first update)::

        {formula}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-3
        Learning rate (torch's default), or a schedule ``lr(step)``.
    momentum : float, default 0
        Momentum factor, torch's form ``b = mu*b + g; p -= lr*b``. cs231n/keras write
        ``v = mu*v - lr*g; p += v``; the two agree while lr is constant (v = -lr*b).
    dampening : float, default 0
        Dampening of the momentum, in [0, 1].
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0 and dampening = 0).
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    l1 : float, default 0
        L1 penalty subgradient ``l1 * sign(p)`` added to the gradient (sign(0) = 0).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.

    State: ``momentum_buffer`` (when momentum > 0), created on a parameter's first update
    as ``d`` itself (torch's rule). SGD keeps no per-parameter step count.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.SGD([w], lr=0.1, momentum=0.9)
    >>> opt.step([2 * w])         # the gradient of sum(w**2)
    True
    >>> w
    array([ 0.8, -1.6])
    """

    family = FAMILIES["sgd"]

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 l1: float = 0.0, maximize: bool = False,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay, l1=l1, maximize=maximize)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float,
                 first_step: bool = False) -> _kernels.KernelOptions:
        return _kernels.sgd_options(lr, group["momentum"], group["dampening"],
                                    group["weight_decay"], group["l1"], group["nesterov"],
                                    group["maximize"], first_step)

    def _units(self, options: _kernels.KernelOptions, group: dict[str, Any], lr: float,
               indices: list[int], params: list[np.ndarray], columns: list,
               scalars: dict[str, list[np.ndarray]], created: list[bool]) -> list[Unit]:
        # torch initialises a new buffer to the first d, so new and old buffers take two calls.
        if columns[0] is None or not any(created):
            return [(options, indices, params, columns, scalars)]
        first = self._options(group, lr, first_step=True)
        units: list[Unit] = []
        for opts, is_new in ((first, True), (options, False)):
            pick = [k for k, c in enumerate(created) if c == is_new]
            if pick:
                units.append((opts, [indices[k] for k in pick], [params[k] for k in pick],
                              [[columns[0][k] for k in pick]], {}))
        return units
