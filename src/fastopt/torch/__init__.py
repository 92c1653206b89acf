"""fastopt.torch: fastopt's fused optimizer kernels as torch.optim drop-ins for CPU tensors.

``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``, ``Adadelta`` and ``NAdam`` are
``torch.optim.Optimizer`` subclasses with torch 2.13's constructor signatures, defaults,
param groups, state and ``state_dict`` format; ``step(closure=None)``,
``zero_grad(set_to_none=True)``, ``add_param_group``, step hooks and torch's LR schedulers
work unchanged (options are read from the groups at every step, so OneCycleLR's cycled
``betas``/``momentum`` are honoured). A state dict loads into the matching ``torch.optim``
class and back, and training goes on with the same results::

    import fastopt.torch
    opt = fastopt.torch.AdamW(model.parameters(), lr=3e-4)      # instead of torch.optim.AdamW

``Lion`` (torch has none) has the signature, group keys and state of lucidrains'
``lion_pytorch.Lion``.

What differs from torch.optim:

* **Tensors.** Params must be dense, contiguous float32/float64 CPU tensors (checked when
  added: a clear TypeError/ValueError otherwise). Gradients of any layout are read in
  place (a non-contiguous one is copied first); sparse gradients raise. State
  tensors are updated in place through their numpy views, so they must be contiguous,
  of the param's dtype, and not require grad (checked when loaded).
* **Speed.** All params of all groups with equal options are updated in one fused C call
  per dtype (work split between threads by total elements). The pointer tables are cached
  between steps. A new gradient tensor (the default ``zero_grad(set_to_none=True)`` gives
  new ones every step) is read through a DLPack capsule (``torch.utils.dlpack.to_dlpack``,
  about 4x cheaper than ``Tensor.numpy()``) whose device, dtype, shape, strides, alignment
  and memory overlap the kernel boundary checks in C; a gradient that stays the same
  tensor (``zero_grad(set_to_none=False)``) is read through a retained numpy view.
* **step.** Kept per parameter as a 0-d int64 tensor the kernel increments (torch keeps a
  float tensor); ``state_dict()`` gives torch's float tensor.
* **Switches.** ``foreach`` and ``fused`` are accepted and kept in the groups (fastopt always
  runs its fused kernel); ``differentiable=True`` and ``capturable=True`` raise ValueError
  (no autograd through the step; no CUDA-graph capture for a host step). ``eps`` must be > 0.
* **Low-precision state.** Every class also takes the keyword-only ``state_dtype``
  (``"bfloat16"`` or ``"int8"``), ``min_lowprec_size`` (4096) and ``state_seed`` (0) of
  :class:`fastopt.optim.Optimizer`: the state of tensors with at least
  ``min_lowprec_size`` elements is kept in fewer bits (torch.optim has no such option;
  the form in ``opt.state`` and ``state_dict()``, and what torch.optim makes of it, are in
  :func:`full_precision_state_dict`'s module, ``fastopt.torch._lowprec``).
* **Autograd's version counter** of a param is not bumped by a step (the kernel writes
  through numpy): a graph built before ``step()`` and backpropagated after it is not
  detected as stale, where torch.optim's in-place updates raise.

torch is imported by this package only; ``import fastopt`` never imports it.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as _err:  # pragma: no cover - exercised in an environment without torch
    raise ModuleNotFoundError("fastopt.torch needs PyTorch, which fastopt itself does not: "
                              "pip install torch==2.13.0", name="torch") from _err

from fastopt.torch._base import Optimizer
from fastopt.torch._lowprec import full_precision_state_dict
from fastopt.torch._optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Lion, NAdam, RMSprop
from fastopt.torch_state import from_torch_state_dict, to_torch_state_dict

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "NAdam",
           "Lion", "from_torch_state_dict", "to_torch_state_dict", "full_precision_state_dict"]
