"""Adam and AdamW (with AMSGrad, L2 or decoupled weight decay, L1 and maximize)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Adam(Optimizer):
    r"""Adam, torch.optim.Adam's update on numpy arrays (one fused pass per group).

    With t the parameter's update count (1 on its first update), ``betas = (beta1,
    beta2)``, and m, v, vmax the states ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``::

        {formula}

    (``decoupled`` is False here: :class:`AdamW` is the decoupled variant.)

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-3
        Learning rate, or a schedule ``lr(step)``.
    betas : (float, float), default (0.9, 0.999)
        ``(beta1, beta2)``, each in [0, 1).
    eps : float, default 1e-8
        > 0, added to the *bias-corrected* root (torch, optax and the paper's
        Algorithm 1). Keras (and TF1) fold the bias corrections into the step size and add
        their eps_k (default 1e-7) to the uncorrected root: that equals fastopt with
        ``eps = eps_k / sqrt(1 - beta2**t)``, so the two differ slightly in the first steps.
    weight_decay : float, default 0
        >= 0: L2 penalty added to the gradient, as torch's Adam (which is *not* AdamW's
        decoupled decay; use :class:`AdamW` for that).
    amsgrad : bool, default False
        Use the running maximum ``vmax`` (state ``max_exp_avg_sq``).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        >= 0: L1 subgradient ``l1 * sign(p)`` added to the gradient (sign(0) = 0).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and with amsgrad
    ``max_exp_avg_sq``; all zeros before the first update.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adam([w], lr=0.1)
    >>> opt.step([2 * w])         # Adam's first step moves each weight by about lr
    True
    >>> w
    array([ 0.9, -1.9])
    """

    family = FAMILIES["adam"]
    _decoupled = False

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
                 l1: float = 0.0,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, l1=l1)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        beta1, beta2 = self._pair(group["betas"], "betas", "(beta1, beta2)")
        return _kernels.adam_options(lr, beta1, beta2, group["eps"], group["weight_decay"],
                                     group["l1"], group["amsgrad"], self._decoupled,
                                     group["maximize"])


class AdamW(Adam):
    r"""AdamW, torch.optim.AdamW's update: Adam with decoupled weight decay.

    Each update first shrinks the parameter, ``p = p * (1 - lr * weight_decay)``, then
    applies :class:`Adam`'s update with no L2 term in the gradient (the L1 sign is taken
    before the shrink): :class:`Adam`'s formula with ``decoupled`` True::

        {formula}

    Parameters are those of :class:`Adam`; ``weight_decay`` defaults to 1e-2 (torch's
    default) and is the decoupled decay. optax's ``adamw`` multiplies the decay by the
    learning rate the same way; keras' ``AdamW`` too.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.step([2 * w])         # w * (1 - 0.1 * 0.5), then Adam's step of about lr
    True
    >>> w
    array([ 0.85, -1.8 ])
    """

    _decoupled = True

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False,
                 l1: float = 0.0,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, l1=l1,
                         state_dtype=state_dtype, min_lowprec_size=min_lowprec_size,
                         state_seed=state_seed, param_rounding=param_rounding)
