"""Adadelta (with weight decay, L1 and maximize)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Adadelta(Optimizer):
    r"""Adadelta, torch.optim.Adadelta's update on numpy arrays (one fused pass per group).

    With :math:`d = \pm g + \lambda p + \lambda_1 \operatorname{sign}(p)`:

    .. math::

        s_t = \rho s_{t-1} + (1 - \rho) d^2, \qquad
        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}}\, d, \qquad
        u_t = \rho u_{t-1} + (1 - \rho) \Delta_t^2, \qquad
        p \leftarrow p - \eta \Delta_t

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1.0
        :math:`\eta` (the paper has no learning rate, i.e. 1), or a schedule ``lr(step)``.
    rho : float, default 0.9
        :math:`\rho` in [0, 1].
    eps : float, default 1e-6
        :math:`\epsilon` > 0, inside both square roots (torch, keras and optax agree).
    weight_decay : float, default 0
        :math:`\lambda` >= 0, L2 penalty added to the gradient.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        :math:`\lambda_1` >= 0, L1 subgradient added to the gradient (sign(0) = 0).

    State per parameter: ``step``, ``square_avg`` (:math:`s`) and ``acc_delta``
    (:math:`u`); zeros before the first update.
    """

    state_names = ("square_avg", "acc_delta")

    def __init__(self, params: ParamsArg, lr: LearningRate = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, maximize: bool = False,
                 l1: float = 0.0) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                        maximize=maximize, l1=l1)
        super().__init__(params, defaults)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        return _kernels.adadelta_options(lr, group["rho"], group["eps"],
                                         group["weight_decay"], group["l1"],
                                         group["maximize"])
