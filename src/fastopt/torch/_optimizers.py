"""SGD, Adagrad, RMSprop, Adam, AdamW, Adadelta and NAdam with torch 2.13's signatures and
defaults, and Lion with lion-pytorch's (torch has no Lion).

Each is a ``torch.optim.Optimizer`` whose step runs the kernel of the fastopt (numpy) class
of the same name; the kernels follow torch.optim's single-tensor update rules (see
``fastopt.Adam`` etc. for the equations, and tests/torch/test_optim.py for the comparison).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Any

import torch

import fastopt.optim as _numpy_optim
from fastopt import _kernels
from fastopt.torch._base import Optimizer, new_state_tensors, real

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "NAdam", "Lion"]

Params = Iterable[Any]


class SGD(Optimizer):
    """torch.optim.SGD, stepped by fastopt's fused kernel (see :class:`fastopt.SGD`).

    Same signature, defaults, state (``momentum_buffer`` when momentum != 0, created as the
    first gradient) and state_dict as torch 2.13's. ``foreach`` and ``fused`` are accepted
    and kept in the groups (fastopt always runs one fused pass); ``differentiable=True`` is
    a ValueError.

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = fastopt.torch.SGD([w], lr=0.1, momentum=0.9)
    >>> w.grad = torch.ones(3)
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([0.9000, 0.9000, 0.9000], requires_grad=True)
    """

    _state_names = _numpy_optim.SGD.state_names
    _family = _numpy_optim.SGD.family
    _has_step = False
    _option_key = itemgetter("lr", "momentum", "dampening", "nesterov", "weight_decay",
                             "maximize")

    def __init__(self, params: Params, lr: float | torch.Tensor = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float | torch.Tensor = 0,
                 nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def _options(self, group: dict[str, Any], first_step: bool = False) -> Any:
        return _kernels.sgd_options(lr=real(group["lr"], "lr"),
                                    momentum=real(group["momentum"], "momentum"),
                                    dampening=real(group["dampening"], "dampening"),
                                    weight_decay=real(group["weight_decay"], "weight_decay"),
                                    nesterov=group["nesterov"], maximize=group["maximize"],
                                    first_step=first_step)

    def _first_step_options(self, group: dict[str, Any]) -> Any:
        # torch initialises a momentum buffer to the first (decayed) gradient, undamped
        return self._options(group, first_step=True)


class Adagrad(Optimizer):
    """torch.optim.Adagrad, stepped by fastopt's fused kernel (see :class:`fastopt.Adagrad`).

    As torch 2.13, the state (``step``, ``sum``) is created at construction, filled with the
    constructor's ``initial_accumulator_value`` (a group's own value is not used, as in
    torch); params added later with :meth:`add_param_group` get theirs on their first step.
    ``eps`` must be > 0 (torch accepts 0).

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = fastopt.torch.Adagrad([w], lr=0.5)
    >>> w.grad = torch.tensor([1.0, -2.0])
    >>> opt.step()
    >>> w.detach()
    tensor([0.5000, 1.5000])
    """

    _state_names = _numpy_optim.Adagrad.state_names
    _family = _numpy_optim.Adagrad.family
    _option_key = itemgetter("lr", "lr_decay", "weight_decay", "eps", "maximize")

    def __init__(self, params: Params, lr: float | torch.Tensor = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        value = real(initial_accumulator_value, "initial_accumulator_value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 <= value < float("inf"):
            raise ValueError("initial_accumulator_value: expected a finite number >= 0, got "
                             f"{initial_accumulator_value!r}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)
        # torch fills the sums at construction; packed per dtype (new_state_tensors)
        params = [p for group in self.param_groups for p in group["params"]]
        for dtype in dict.fromkeys(p.dtype for p in params):
            ps = [p for p in params if p.dtype == dtype]
            sums = (new_state_tensors(ps, float(value)) if state_dtype is None else
                    [self._new_state(p, "sum", float(value)) for p in ps])
            steps = new_state_tensors([], 0, torch.int64, [()] * len(ps), slot_bytes=8)
            for p, s, step in zip(ps, sums, steps):
                self.state[p] = {"step": step, "sum": s}

    def _options(self, group: dict[str, Any]) -> Any:
        return _kernels.adagrad_options(lr=real(group["lr"], "lr"),
                                        lr_decay=real(group["lr_decay"], "lr_decay"),
                                        weight_decay=real(group["weight_decay"], "weight_decay"),
                                        eps=real(group["eps"], "eps"), maximize=group["maximize"])

    def _fill(self, name: str) -> float:
        return float(real(self.defaults["initial_accumulator_value"],
                          "initial_accumulator_value"))


class RMSprop(Optimizer):
    """torch.optim.RMSprop, stepped by fastopt's fused kernel (see :class:`fastopt.RMSprop`).

    Same signature (all arguments positional as in torch 2.13), defaults and state
    (``step``, ``square_avg``, ``momentum_buffer`` when momentum > 0, ``grad_avg`` when
    centered). A state tensor a group's options need later (momentum or centered switched
    on mid-run) starts from zeros, where torch raises KeyError.

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = fastopt.torch.RMSprop([w], lr=0.01, centered=True)
    >>> w.grad = torch.ones(2)
    >>> opt.step()
    >>> sorted(opt.state[w])
    ['grad_avg', 'square_avg', 'step']
    """

    _state_names = _numpy_optim.RMSprop.state_names
    _family = _numpy_optim.RMSprop.family
    _option_key = itemgetter("lr", "alpha", "eps", "weight_decay", "momentum", "centered",
                             "maximize")

    def __init__(self, params: Params, lr: float | torch.Tensor = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, *,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay,
                    "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def _options(self, group: dict[str, Any]) -> Any:
        return _kernels.rmsprop_options(lr=real(group["lr"], "lr"),
                                        alpha=real(group["alpha"], "alpha"),
                                        eps=real(group["eps"], "eps"),
                                        weight_decay=real(group["weight_decay"], "weight_decay"),
                                        momentum=real(group["momentum"], "momentum"),
                                        centered=group["centered"], maximize=group["maximize"])


class Adam(Optimizer):
    """torch.optim.Adam, stepped by fastopt's fused kernel (see :class:`fastopt.Adam`).

    Same signature (including torch 2.13's ``decoupled_weight_decay``, which makes it
    AdamW), defaults, state (``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` with
    amsgrad) and state_dict. ``lr`` and ``betas`` may be floats or 1-element tensors, and
    are read at every step, so torch's LR schedulers work, including OneCycleLR cycling
    ``betas``. ``eps`` must be > 0 (torch accepts 0).

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = fastopt.torch.Adam(model.parameters(), lr=1e-3)
    >>> model(torch.ones(4, 3)).sum().backward()
    >>> opt.step()
    >>> opt.zero_grad()
    >>> int(opt.state[model.weight]["step"])
    1
    """

    _state_names = _numpy_optim.Adam.state_names
    _family = _numpy_optim.Adam.family
    _option_key = itemgetter("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                             "decoupled_weight_decay")

    def __init__(self, params: Params, lr: float | torch.Tensor = 1e-3,
                 betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        defaults = {"lr": lr, "betas": _pair(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable,
                    "fused": fused, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def _options(self, group: dict[str, Any]) -> Any:
        beta1, beta2 = _pair(group["betas"])
        return _kernels.adam_options(lr=real(group["lr"], "lr"), beta1=real(beta1, "betas[0]"),
                                     beta2=real(beta2, "betas[1]"), eps=real(group["eps"], "eps"),
                                     weight_decay=real(group["weight_decay"], "weight_decay"),
                                     amsgrad=group["amsgrad"],
                                     decoupled=group["decoupled_weight_decay"],
                                     maximize=group["maximize"])


class AdamW(Adam):
    """torch.optim.AdamW (Adam with decoupled weight decay, default 1e-2), stepped by
    fastopt's fused kernel (see :class:`fastopt.AdamW`).

    As torch 2.13's AdamW: groups always have ``decoupled_weight_decay=True``, also after
    loading a state dict.

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = fastopt.torch.AdamW([w], lr=0.1, weight_decay=0.1)
    >>> w.grad = torch.zeros(2)
    >>> opt.step()          # zero gradient: only the decay acts, w *= 1 - lr * weight_decay
    >>> w.detach()
    tensor([0.9900, 0.9900])
    """

    def __init__(self, params: Params, lr: float | torch.Tensor = 1e-3,
                 betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class Adadelta(Optimizer):
    """torch.optim.Adadelta, stepped by fastopt's fused kernel (see
    :class:`fastopt.Adadelta`).

    Same signature, defaults, state (``step``, ``square_avg``, ``acc_delta``) and state_dict
    as torch 2.13's.

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> opt = fastopt.torch.Adadelta([w])
    >>> w.grad = torch.ones(2)
    >>> opt.step()
    >>> sorted(opt.state[w])
    ['acc_delta', 'square_avg', 'step']
    """

    _state_names = _numpy_optim.Adadelta.state_names
    _family = _numpy_optim.Adadelta.family
    _option_key = itemgetter("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(self, params: Params, lr: float | torch.Tensor = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def _options(self, group: dict[str, Any]) -> Any:
        return _kernels.adadelta_options(lr=real(group["lr"], "lr"), rho=real(group["rho"], "rho"),
                                         eps=real(group["eps"], "eps"),
                                         weight_decay=real(group["weight_decay"], "weight_decay"),
                                         maximize=group["maximize"])


class NAdam(Optimizer):
    """torch.optim.NAdam, stepped by fastopt's fused kernel (see :class:`fastopt.NAdam`).

    Same signature (``momentum_decay``, ``decoupled_weight_decay``), defaults, state
    (``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``) and state_dict as torch
    2.13's. ``mu_product`` is kept as a 0-d float64 tensor (torch keeps it in its default
    dtype, float32 unless set otherwise, where it underflows to 0 after a few hundred
    steps); ``state_dict()`` gives torch's dtype. ``eps`` must be > 0.

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    >>> opt = fastopt.torch.NAdam([w], lr=0.1)
    >>> w.grad = 2 * w.detach()
    >>> opt.step()
    >>> w.detach().numpy().round(4)
    array([ 0.8944, -1.8944])
    >>> sorted(opt.state[w])
    ['exp_avg', 'exp_avg_sq', 'mu_product', 'step']
    """

    _state_names = _numpy_optim.NAdam.state_names
    _family = _numpy_optim.NAdam.family
    _reals = tuple((s.name, float(s.initial)) for s in _numpy_optim.NAdam.family.scalars
                   if not s.is_step)
    _option_key = itemgetter("lr", "betas", "eps", "weight_decay", "momentum_decay",
                             "decoupled_weight_decay", "maximize")

    def __init__(self, params: Params, lr: float | torch.Tensor = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        defaults = {"lr": lr, "betas": _pair(betas), "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def _options(self, group: dict[str, Any]) -> Any:
        beta1, beta2 = _pair(group["betas"])
        return _kernels.nadam_options(
            lr=real(group["lr"], "lr"), beta1=real(beta1, "betas[0]"),
            beta2=real(beta2, "betas[1]"), eps=real(group["eps"], "eps"),
            weight_decay=real(group["weight_decay"], "weight_decay"),
            momentum_decay=real(group["momentum_decay"], "momentum_decay"),
            decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), stepped by
    fastopt's fused kernel (see :class:`fastopt.Lion`). torch has no Lion: the signature,
    defaults, group keys and state are lucidrains' ``lion_pytorch.Lion`` (the paper's
    reference code), so its state dicts load both ways::

        Lion(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, use_triton=False,
             decoupled_weight_decay=False, *, maximize=False)

    Per parameter with a gradient ``g`` (state ``exp_avg`` = m, zeros at first)::

        p *= 1 - lr * wd
        p -= lr * sign(beta1 * m + (1 - beta1) * g)
        m  = beta2 * m + (1 - beta2) * g

    with ``wd = weight_decay``, or ``weight_decay / lr0`` with
    ``decoupled_weight_decay=True`` (lion-pytorch's: ``lr0`` is the constructor's ``lr``,
    so the decay per step is ``lr / lr0 * weight_decay``, independent of the lr's scale).
    sign(0) = 0. ``betas`` are read at every step, so torch's OneCycleLR cycles ``betas[0]``.
    ``use_triton=True`` (a GPU kernel) is a ValueError; ``maximize`` is fastopt's
    addition (ascend). No per-parameter step is kept (the update needs none).

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    >>> opt = fastopt.torch.Lion([w], lr=0.1)
    >>> w.grad = torch.tensor([3.0, -0.001, 0.0])
    >>> opt.step()                        # each weight moves by lr * sign
    >>> w.detach()
    tensor([ 0.9000, -1.9000,  0.5000])
    """

    _state_names = _numpy_optim.Lion.state_names
    _family = _numpy_optim.Lion.family
    _has_step = False
    _option_key = itemgetter("lr", "betas", "weight_decay", "decoupled_weight_decay",
                             "maximize")

    def __init__(self, params: Params, lr: float | torch.Tensor = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0,
                 use_triton: bool = False, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False,
                 state_dtype: str | None = None,
                 min_lowprec_size: int = 4096, state_seed: int = 0) -> None:
        if use_triton:
            raise ValueError("use_triton: Triton kernels run on GPUs; fastopt.torch steps CPU "
                             "tensors with its C kernel (use use_triton=False)")
        defaults = {"lr": lr, "betas": _pair(betas), "weight_decay": weight_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize}
        super().__init__(params, defaults, state_dtype=state_dtype,
                         min_lowprec_size=min_lowprec_size, state_seed=state_seed)

    def _options(self, group: dict[str, Any]) -> Any:
        beta1, beta2 = _pair(group["betas"])
        wd = real(group["weight_decay"], "weight_decay")
        decoupled = group["decoupled_weight_decay"]
        if decoupled is not True and decoupled is not False:
            raise TypeError("decoupled_weight_decay: expected True or False, got "
                            f"{decoupled!r}")
        if decoupled:
            lr0 = real(self.defaults["lr"], "lr")
            if not isinstance(lr0, (int, float)) or not lr0 > 0:
                raise ValueError("lr: decoupled_weight_decay divides the weight decay by the "
                                 f"constructor's lr, which must be > 0, got {lr0!r}")
            if isinstance(wd, (int, float)) and not isinstance(wd, bool):
                wd = wd / lr0
        return _kernels.lion_options(lr=real(group["lr"], "lr"), beta1=real(beta1, "betas[0]"),
                                     beta2=real(beta2, "betas[1]"), weight_decay=wd,
                                     maximize=group["maximize"])


def _pair(betas: Any) -> tuple[Any, Any]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    return (betas[0], betas[1])
