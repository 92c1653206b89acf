"""Stateful first-order optimizers with torch.optim's names and update semantics.

``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``, ``Adadelta``, ``NAdam`` and ``Lion``
update numpy arrays (float32 or float64, C-contiguous, writeable) in place::

    opt = fastopt.Adam(params, lr=1e-3)          # or [{"params": [...], "lr": ...}, ...]
    opt.step(grads)                             # grads in the order of the params

Each class documents its update rule (from the table of families,
:mod:`fastopt.optim.families`), its defaults and where torch, optax and keras differ.
Shared behaviour:

* **One fused pass, one C call per group and dtype.** A step reads each param, gradient
  and state array once and writes each param and state array once, in one multi-tensor
  C call per param group (per dtype) whose work is split by total elements between the
  threads; the GIL is released. Results are bitwise identical for any thread count.
* **Beyond torch.** Every optimizer takes ``l1`` (``l1 * sign(p)`` added to the gradient,
  sign(0) = 0, so L2 + L1 = elastic net costs no extra pass); RMSprop takes
  ``eps_in_sqrt``. ``lr`` -- and any other float option: ``betas`` (either element),
  ``momentum``, ``weight_decay``, ... -- may be a float or any schedule ``f(step)`` of the
  group's step count (see :mod:`fastopt.schedules`; ``one_cycle_momentum`` is what torch's
  OneCycleLR does to ``betas[0]``/``momentum``).
* **State** is allocated lazily on a parameter's first update, with its dtype, keyed by
  position (``opt.state[i]``), and includes torch's per-parameter ``step`` count.
  ``state_dict()`` / ``load_state_dict()`` round-trip plain numbers and numpy arrays
  (pickle or ``np.savez`` them); a resumed run continues bitwise identically.
* **Non-finite gradients.** By default NaN/Inf propagate as the formulas say. With
  ``step(grads, skip_if_nonfinite=True)`` a parallel pre-scan of the gradients runs first
  and, if any element is NaN/Inf, nothing changes (params, state, step counts) and
  ``step`` returns False, as mixed-precision loss scaling needs.
* **Errors** are TypeError/ValueError naming the argument, raised before anything is
  modified.
* **Rebinding.** Optimizers update the arrays they were given; after replacing one
  (``params[k] = new_array``), call ``opt.rebind(params)`` (state kept). A list or
  ``dict.values()`` given as params is watched: ``step`` warns once
  (:class:`fastopt.StaleParamsWarning`) when an entry was replaced without ``rebind``.
* **Threads.** Optimizers used from different Python threads are independent. One
  optimizer stepped from two threads at once raises RuntimeError in the second.

The functional forms (``fastopt.kernels.adam_step`` and friends) run the same kernels on
arrays whose state you keep yourself.
"""

from fastopt.optim.adadelta import Adadelta
from fastopt.optim.adagrad import Adagrad
from fastopt.optim.adam import Adam, AdamW
from fastopt.optim.lion import Lion
from fastopt.optim.nadam import NAdam
from fastopt.optim.optimizer import Optimizer
from fastopt.optim.rebinding import StaleParamsWarning  # noqa: F401  (fastopt exports it)
from fastopt.optim.rmsprop import RMSprop
from fastopt.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "NAdam",
           "Lion"]
