"""Adagrad (with learning-rate decay, weight decay, L1 and maximize)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastopt import _kernels
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Adagrad(Optimizer):
    r"""Adagrad, torch.optim.Adagrad's update on numpy arrays (one fused pass per group).

    With :math:`t` the parameter's update count (1 on its first update) and
    :math:`d = \pm g + \lambda p + \lambda_1 \operatorname{sign}(p)`:

    .. math::

        s_t = s_{t-1} + d^2, \qquad
        p \leftarrow p - \frac{\eta}{1 + (t - 1)\,\delta} \, \frac{d}{\sqrt{s_t} + \epsilon}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-2
        :math:`\eta`, or a schedule ``lr(step)``.
    lr_decay : float, default 0
        :math:`\delta` >= 0.
    weight_decay : float, default 0
        :math:`\lambda` >= 0, L2 penalty added to the gradient.
    initial_accumulator_value : float, default 0
        :math:`s_0` >= 0.
    eps : float, default 1e-10
        :math:`\epsilon` > 0, outside the square root (torch's placement). optax's
        ``adagrad`` and keras' ``Adagrad`` divide by :math:`\sqrt{s_t + \epsilon}` instead
        and start from :math:`s_0 = 0.1`; they have no ``lr_decay``.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        :math:`\lambda_1` >= 0, L1 subgradient added to the gradient (sign(0) = 0).

    State per parameter: ``step`` and ``sum`` (:math:`s`).
    """

    state_names = ("sum",)

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, maximize: bool = False, l1: float = 0.0) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize, l1=l1)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        value = group["initial_accumulator_value"]
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            raise TypeError("initial_accumulator_value: expected a real number, got "
                            f"{type(value).__name__}")
        try:
            finite = 0 <= float(value) < np.inf
        except OverflowError:   # an int beyond float range (10**400 < inf holds for ints)
            finite = False
        if not finite:
            raise ValueError("initial_accumulator_value: expected a finite number >= 0, got "
                             f"{value!r}")

    def _fill(self, name: str, group: dict[str, Any]) -> float:
        return float(group["initial_accumulator_value"])

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        return _kernels.adagrad_options(lr, group["lr_decay"], group["weight_decay"],
                                        group["eps"], group["l1"], group["maximize"])
