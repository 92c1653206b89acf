"""RMSprop (centered, momentum, eps inside or outside the root, weight decay, L1)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class RMSprop(Optimizer):
    r"""RMSprop, torch.optim.RMSprop's update on numpy arrays (one fused pass per group).

    With sq, ga, buf the states ``square_avg``, ``grad_avg`` and ``momentum_buffer``::

        {formula}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-2
        Learning rate, or a schedule ``lr(step)``.
    alpha : float, default 0.99
        Smoothing constant in [0, 1] (keras calls it ``rho``, optax ``decay``, cs231n
        ``decay_rate``).
    eps : float, default 1e-8
        > 0.
    weight_decay : float, default 0
        >= 0, L2 penalty added to the gradient.
    momentum : float, default 0
        >= 0, torch's form ``buf = momentum*buf + d/den; p -= lr*buf`` (keras/optax apply
        momentum to ``lr*d/den``; the forms agree while lr is constant).
    centered : bool, default False
        Normalize by the estimated variance instead of the second moment.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        >= 0, L1 subgradient added to the gradient (sign(0) = 0).
    eps_in_sqrt : bool, default False
        False: ``sqrt(w) + eps`` (torch, cs231n). True: ``sqrt(w + eps)`` (optax's
        ``rmsprop`` and keras' placement).

    State per parameter: ``step``, ``square_avg``, ``grad_avg`` (centered) and
    ``momentum_buffer`` (momentum > 0); zeros before the first update.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.RMSprop([w], lr=0.01, alpha=0.75)
    >>> opt.step([2 * w])         # the first step is lr * sign(g) / sqrt(1 - alpha)
    True
    >>> w
    array([ 0.98, -1.98])
    """

    family = FAMILIES["rmsprop"]

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, maximize: bool = False, l1: float = 0.0,
                 eps_in_sqrt: bool = False,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize, l1=l1,
                        eps_in_sqrt=eps_in_sqrt)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        return _kernels.rmsprop_options(lr, group["alpha"], group["eps"],
                                        group["weight_decay"], group["momentum"], group["l1"],
                                        group["centered"], group["maximize"],
                                        group["eps_in_sqrt"])
