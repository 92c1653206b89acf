"""RMSprop (centered, momentum, eps inside or outside the root, weight decay, L1)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class RMSprop(Optimizer):
    r"""RMSprop, torch.optim.RMSprop's update on numpy arrays (one fused pass per group).

    With :math:`d = \pm g + \lambda p + \lambda_1 \operatorname{sign}(p)`:

    .. math::

        s_t = \alpha s_{t-1} + (1 - \alpha) d^2, \qquad
        a_t = \alpha a_{t-1} + (1 - \alpha) d \ \text{(centered)}, \qquad
        w_t = s_t - a_t^2 \ \text{(centered, else } w_t = s_t)

        D_t = \sqrt{w_t} + \epsilon \quad\text{or, with eps\_in\_sqrt,}\quad
        D_t = \sqrt{w_t + \epsilon}

        b_t = \mu b_{t-1} + d / D_t, \ p \leftarrow p - \eta b_t \ \ (\mu > 0);
        \qquad p \leftarrow p - \eta\, d / D_t \ \ (\mu = 0)

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-2
        :math:`\eta`, or a schedule ``lr(step)``.
    alpha : float, default 0.99
        Smoothing constant :math:`\alpha` in [0, 1] (keras calls it ``rho``, optax
        ``decay``, cs231n ``decay_rate``).
    eps : float, default 1e-8
        :math:`\epsilon` > 0.
    weight_decay : float, default 0
        :math:`\lambda` >= 0, L2 penalty added to the gradient.
    momentum : float, default 0
        :math:`\mu` >= 0, torch's form ``b = mu*b + d/D; p -= lr*b`` (keras/optax apply
        momentum to ``lr*d/D``; the forms agree while lr is constant).
    centered : bool, default False
        Normalize by the estimated variance instead of the second moment.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        :math:`\lambda_1` >= 0, L1 subgradient added to the gradient (sign(0) = 0).
    eps_in_sqrt : bool, default False
        False: :math:`\sqrt{w} + \epsilon` (torch, cs231n). True: :math:`\sqrt{w + \epsilon}`
        (optax's ``rmsprop`` and keras' placement).

    State per parameter: ``step``, ``square_avg`` (:math:`s`), ``grad_avg`` (:math:`a`,
    centered) and ``momentum_buffer`` (:math:`b`, momentum > 0); zeros before the first
    update.
    """

    state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, maximize: bool = False, l1: float = 0.0,
                 eps_in_sqrt: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize, l1=l1,
                        eps_in_sqrt=eps_in_sqrt)
        super().__init__(params, defaults)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        return _kernels.rmsprop_options(lr, group["alpha"], group["eps"],
                                        group["weight_decay"], group["momentum"],
                                        group["centered"], group["l1"], group["maximize"],
                                        group["eps_in_sqrt"])
