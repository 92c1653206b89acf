"""Adagrad (with learning-rate decay, weight decay, L1 and maximize)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Adagrad(Optimizer):
    r"""Adagrad, torch.optim.Adagrad's update on numpy arrays (one fused pass per group).

    With t the parameter's update count (1 on its first update) and ``sum`` the state of
    that name::

        {formula}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-2
        Learning rate, or a schedule ``lr(step)``.
    lr_decay : float, default 0
        >= 0.
    weight_decay : float, default 0
        >= 0, L2 penalty added to the gradient.
    initial_accumulator_value : float, default 0
        >= 0, the value of ``sum`` before the first update.
    eps : float, default 1e-10
        > 0, outside the square root (torch's placement). optax's ``adagrad`` and keras'
        ``Adagrad`` divide by ``sqrt(sum + eps)`` instead and start from 0.1; they have no
        ``lr_decay``.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        >= 0, L1 subgradient added to the gradient (sign(0) = 0).

    State per parameter: ``step`` and ``sum``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adagrad([w], lr=0.5)
    >>> opt.step([2 * w])         # the first step is lr * sign(g)
    True
    >>> w
    array([ 0.5, -1.5])
    """

    family = FAMILIES["adagrad"]

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, maximize: bool = False, l1: float = 0.0,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize, l1=l1)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        return _kernels.adagrad_options(lr, group["lr_decay"], group["weight_decay"],
                                        group["eps"], group["l1"], group["maximize"])
