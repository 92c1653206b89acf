"""Adadelta (with weight decay, L1 and maximize)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Adadelta(Optimizer):
    r"""Adadelta, torch.optim.Adadelta's update on numpy arrays (one fused pass per group).

    With sq and acc the states ``square_avg`` and ``acc_delta``::

        {formula}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1.0
        Learning rate (the paper has none, i.e. 1), or a schedule ``lr(step)``.
    rho : float, default 0.9
        In [0, 1].
    eps : float, default 1e-6
        > 0, inside both square roots (torch, keras and optax agree).
    weight_decay : float, default 0
        >= 0, L2 penalty added to the gradient.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        >= 0, L1 subgradient added to the gradient (sign(0) = 0).

    State per parameter: ``step``, ``square_avg`` and ``acc_delta``; zeros before the first
    update.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adadelta([w], lr=1.0, rho=0.0, eps=1.0)
    >>> opt.step([np.array([3.0, -3.0])])   # delta = sqrt(0 + 1) / sqrt(9 + 1) * g
    True
    >>> np.round(w, 6)
    array([ 0.051317, -1.051317])
    """

    family = FAMILIES["adadelta"]

    def __init__(self, params: ParamsArg, lr: LearningRate = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, maximize: bool = False,
                 l1: float = 0.0,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                        maximize=maximize, l1=l1)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        return _kernels.adadelta_options(lr, group["rho"], group["eps"],
                                         group["weight_decay"], group["l1"],
                                         group["maximize"])
