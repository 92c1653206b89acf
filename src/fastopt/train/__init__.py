"""Training practice (early stopping, averaging, search, LR finder, gradient checks, clipping).

The package re-exports every public name, so ``fastopt.train.X`` and
``from fastopt.train import X`` keep working whichever module defines ``X``.
"""

from fastopt.train.search import (
    EMA,
    Choice,
    EarlyStopping,
    IntUniform,
    LogUniform,
    LRFinderResult,
    Trial,
    Uniform,
    check_grad,
    clip_grad_norm,
    clip_grads_with_norm,
    ensemble_average,
    grid_search,
    lr_finder,
    numerical_gradient,
    numerical_gradient_array,
    random_search,
    relative_error,
    total_norm,
)
from fastopt.train.search import __all__ as __all__  # noqa: F401
