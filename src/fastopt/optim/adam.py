"""Adam and AdamW (with AMSGrad, L2 or decoupled weight decay, L1 and maximize)."""

from __future__ import annotations

from typing import Any

from fastopt import _kernels
from fastopt.optim.optimizer import LearningRate, Optimizer, ParamsArg


class Adam(Optimizer):
    r"""Adam, torch.optim.Adam's update on numpy arrays (one fused pass per group).

    With :math:`t` the parameter's update count (1 on its first update) and
    :math:`d = \pm g + \lambda p + \lambda_1 \operatorname{sign}(p)` (minus sign when
    ``maximize``):

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) d, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) d^2, \qquad
        \hat v_t = \max(\hat v_{t-1}, v_t) \ \text{(amsgrad, else } \hat v_t = v_t)

        p \leftarrow p - \frac{\eta}{1 - \beta_1^t} \,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place, or param groups.
    lr : float or callable, default 1e-3
        :math:`\eta`, or a schedule ``lr(step)``.
    betas : (float, float), default (0.9, 0.999)
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default 1e-8
        :math:`\epsilon` > 0, added to the *bias-corrected* :math:`\sqrt{\hat v}` (torch,
        optax and the paper's Algorithm 1). Keras (and TF1) fold the bias corrections into
        the step size and add their :math:`\epsilon_k` (default 1e-7) to the uncorrected
        root: that equals fastopt with :math:`\epsilon = \epsilon_k / \sqrt{1-\beta_2^t}`,
        so the two differ slightly in the first steps.
    weight_decay : float, default 0
        :math:`\lambda` >= 0: L2 penalty added to the gradient, as torch's Adam (which is
        *not* AdamW's decoupled decay; use :class:`AdamW` for that).
    amsgrad : bool, default False
        Use the running maximum :math:`\hat v` (state ``max_exp_avg_sq``).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    l1 : float, default 0
        :math:`\lambda_1` >= 0: L1 subgradient :math:`\lambda_1 \operatorname{sign}(p)` added
        to the gradient (sign(0) = 0).

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and
    with amsgrad ``max_exp_avg_sq``; all zeros before the first update.
    """

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
                 l1: float = 0.0) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, l1=l1)
        super().__init__(params, defaults)

    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        return _kernels.adam_options(lr, betas[0], betas[1], group["eps"],
                                     group["weight_decay"], group["l1"], group["amsgrad"],
                                     self._decoupled, group["maximize"])


class AdamW(Adam):
    r"""AdamW, torch.optim.AdamW's update: Adam with decoupled weight decay.

    Each update first shrinks the parameter, :math:`p \leftarrow p (1 - \eta \lambda)`, then
    applies :class:`Adam`'s update with :math:`d = \pm g + \lambda_1 \operatorname{sign}(p)`
    (no L2 term in the gradient; the L1 sign is taken before the shrink).

    Parameters are those of :class:`Adam`; ``weight_decay`` defaults to 1e-2 (torch's
    default) and is the decoupled :math:`\lambda`. optax's ``adamw`` multiplies the decay by
    the learning rate the same way; keras' ``AdamW`` too.
    """

    _decoupled = True

    def __init__(self, params: ParamsArg, lr: LearningRate = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False,
                 l1: float = 0.0) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, l1=l1)
