"""Lion: the sign of an interpolated momentum (Chen et al. 2023)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Lion(Optimizer):
    r"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), optax.lion's
    update on numpy arrays (one fused pass per group).

    With ``betas = (beta1, beta2)`` and m the state ``exp_avg``::

        {formula}

    Every coordinate moves by ``lr`` (plus the decay) each step, so Lion wants a learning
    rate 3-10x smaller than AdamW's and a weight decay 3-10x larger (the paper's advice).

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-4
        Learning rate, or a schedule ``lr(step)`` (the paper's and lion-pytorch's default;
        optax has none).
    betas : (float, float), default (0.9, 0.99)
        ``(beta1, beta2)`` in [0, 1]: beta1 interpolates the update direction, beta2 is the
        momentum's decay.
    weight_decay : float, default 0
        >= 0, decoupled and scaled by the learning rate (optax's ``weight_decay``, whose
        default is 1e-3; lion-pytorch's default is 0).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        >= 0: L1 subgradient ``l1 * sign(p)`` added to the gradient (sign(0) = 0).

    State per parameter: ``step`` and ``exp_avg`` (zeros before the first update).

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0, 0.5])
    >>> opt = fastopt.Lion([w], lr=0.1)
    >>> opt.step([np.array([3.0, -0.001, 0.0])])   # each weight moves by lr * sign
    True
    >>> w
    array([ 0.9, -1.9,  0.5])
    """

    family = FAMILIES["lion"]

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0,
                 maximize: bool = False, l1: float = 0.0,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                        l1=l1)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        beta1, beta2 = self._pair(group["betas"], "betas", "(beta1, beta2)")
        return _kernels.lion_options(lr, beta1, beta2, group["weight_decay"], group["l1"],
                                     group["maximize"])
