"""Stochastic gradient descent with momentum, dampening and Nesterov."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastopt._kernels import sgd_step
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class SGD(Optimizer):
    r"""Stochastic gradient descent, torch.optim.SGD's update on numpy arrays.

    With :math:`d = \pm g + \lambda p + \lambda_1 \operatorname{sign}(p)` (minus sign when
    ``maximize``):

    .. math::

        b_t = \begin{cases} d & t = 1 \\ \mu b_{t-1} + (1 - \tau) d & t > 1 \end{cases},
        \qquad p \leftarrow p - \eta \begin{cases} d + \mu b_t & \text{nesterov} \\
        b_t & \text{otherwise} \end{cases}

    and :math:`p \leftarrow p - \eta d` when :math:`\mu = 0`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-3
        Learning rate :math:`\eta` (torch's default), or a schedule ``lr(step)``.
    momentum : float, default 0
        :math:`\mu`. torch's form ``b = mu*b + g; p -= lr*b``. cs231n/keras write
        ``v = mu*v - lr*g; p += v``; the two agree while lr is constant.
    dampening : float, default 0
        :math:`\tau`, in [0, 1].
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0 and dampening = 0).
    weight_decay : float, default 0
        :math:`\lambda`, L2 penalty added to the gradient.
    l1 : float, default 0
        :math:`\lambda_1`, L1 penalty subgradient added to the gradient (sign(0) = 0).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    """

    state_names = ("momentum_buffer",)

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 l1: float = 0.0, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay, l1=l1, maximize=maximize)
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[np.ndarray],
                      grads: list[np.ndarray], indices: list[int], lr: float) -> None:
        options = dict(lr=lr, momentum=group["momentum"], dampening=group["dampening"],
                       nesterov=group["nesterov"], weight_decay=group["weight_decay"],
                       l1=group["l1"], maximize=group["maximize"])
        if group["momentum"] == 0 or not params:
            sgd_step(params, grads, [] if group["momentum"] else None, **options)
            return
        bufs, created = self._states(params, indices, "momentum_buffer")
        # torch initialises a buffer to the first d, so new and old buffers take separate calls.
        for first in (True, False):
            pick = [k for k, c in enumerate(created) if c == first]
            if pick:
                sgd_step([params[k] for k in pick], [grads[k] for k in pick],
                         [bufs[k] for k in pick], first_step=first, **options)
        self._keep_states(indices, "momentum_buffer", bufs)
