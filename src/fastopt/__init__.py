"""fastopt: fast numerical optimization for numpy code.

First-order optimizers with torch.optim semantics, learning-rate schedules, dropout and
BatchNorm, and quasi-Newton minimizers, whose hot loops are C with OpenMP behind one Cython
boundary (``fastopt._kernels``). Arrays are updated in place; nothing is modified when a
call raises.
"""

# The OpenMP runtime's wait policy must be in the environment when fastopt._kernels loads
# it (fastopt._wait_policy explains why); nothing above this line may import _kernels.
from fastopt import _wait_policy
from fastopt._version import __version__

_wait_policy.before_load()
try:
    from fastopt import _kernels  # noqa: F401
finally:
    _wait_policy.after_load()

from typing import TYPE_CHECKING, Any

from fastopt import init, kernels, nn, schedules
from fastopt._config import (
    get_include,
    get_library_dir,
    get_num_threads,
    set_num_threads,
    show_config,
    threads,
)
from fastopt.checkpoint import load_state, save_state
from fastopt.optim import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    Lion,
    NAdam,
    Optimizer,
    RMSprop,
    StaleParamsWarning,
)

# fastopt.train and fastopt.optimize (and the names taken from them) are imported on first
# use: a numpy training loop needs neither, and they are a third of import time.
# fastopt.minimize is the function, as scipy.optimize.minimize; its modules live in
# fastopt.optimize (`from fastopt.optimize.problems import ...`). Neither imports scipy.
_LAZY = {"train": ("fastopt.train", None), "optimize": ("fastopt.optimize", None),
         "minimize": ("fastopt.optimize", "minimize"),
         "check_grad": ("fastopt.train", "check_grad"),
         "clip_grad_norm": ("fastopt.train", "clip_grad_norm")}

if TYPE_CHECKING:
    from fastopt import train
    from fastopt.optimize import minimize
    from fastopt.train import check_grad, clip_grad_norm


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fastopt' has no attribute {name!r}")
    import importlib
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value      # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "__version__",
    "kernels",
    "schedules",
    "init",
    "train",
    "nn",
    "get_include",
    "get_library_dir",
    "get_num_threads",
    "set_num_threads",
    "show_config",
    "threads",
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adadelta",
    "NAdam",
    "Lion",
    "StaleParamsWarning",
    "check_grad",
    "clip_grad_norm",
    "minimize",
    "save_state",
    "load_state",
]
