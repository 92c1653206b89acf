"""NAdam: Adam with Nesterov momentum (with L2 or decoupled weight decay, L1, maximize)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels, _validation
from fastopt.optim.families import FAMILIES
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class NAdam(Optimizer):
    r"""NAdam (Dozat 2016), torch.optim.NAdam's update on numpy arrays (one fused pass per
    group).

    With t the parameter's update count (1 on its first update), ``betas = (beta1,
    beta2)``, ``decoupled = decoupled_weight_decay``, m and v the states ``exp_avg`` and
    ``exp_avg_sq`` and ``mu_product`` the state of that name::

        {formula}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 2e-3
        Learning rate (torch's default), or a schedule ``lr(step)``.
    betas : (float, float), default (0.9, 0.999)
        ``(beta1, beta2)``, each in [0, 1).
    eps : float, default 1e-8
        > 0, added to the bias-corrected root.
    weight_decay : float, default 0
        >= 0: L2 penalty added to the gradient, or with ``decoupled_weight_decay`` the
        decoupled decay ``p *= 1 - lr * weight_decay`` (torch's NAdamW).
    momentum_decay : float, default 4e-3
        >= 0, psi in the momentum schedule ``mu_t = beta1 (1 - 0.5 * 0.96**(t psi))``.
    decoupled_weight_decay : bool, default False
        Decoupled weight decay, as AdamW.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        >= 0: L1 subgradient ``l1 * sign(p)`` added to the gradient (sign(0) = 0).

    State per parameter: ``step``, ``mu_product`` (a 0-d float64 array; a float in
    ``state_dict()``), ``exp_avg`` and ``exp_avg_sq``; torch's names. torch keeps
    ``mu_product`` in its default dtype (float32 unless set otherwise); fastopt in double,
    like the other per-step coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.NAdam([w], lr=0.1)
    >>> opt.step([2 * w])
    True
    >>> np.round(w, 4)
    array([ 0.8944, -1.8944])
    >>> float(opt.state[0]["mu_product"])     # mu_1 = 0.9 * (1 - 0.5 * 0.96**0.004)
    0.45007347359129607
    """

    family = FAMILIES["nadam"]

    def __init__(self, params: ParamsArg, lr: LearningRate = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, maximize: bool = False,
                 l1: float = 0.0,
                 *, state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        l1=l1)
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed,
                         param_rounding=param_rounding)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        beta1, beta2 = self._pair(group["betas"], "betas", "(beta1, beta2)")
        decoupled = group["decoupled_weight_decay"]
        if decoupled is not True and decoupled is not False:  # the kernel's name is decoupled
            decoupled = _validation.check_bool(decoupled, "decoupled_weight_decay")
        return _kernels.nadam_options(lr, beta1, beta2, group["eps"], group["weight_decay"],
                                      group["momentum_decay"], group["l1"], decoupled,
                                      group["maximize"])
