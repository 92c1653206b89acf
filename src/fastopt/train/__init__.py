"""Training practice: the habits that make gradient training work.

One module per concept; every public name is also importable from here
(``fastopt.train.X``, ``from fastopt.train import X``):

* :mod:`~fastopt.train.early_stopping` -- :class:`EarlyStopping`: stop when the
  validation metric stops improving, keep (and restore) the best parameters;
* :mod:`~fastopt.train.averaging` -- :class:`EMA`, an exponential moving average
  (Polyak averaging) of weights, and :func:`ensemble_average`, averaging the
  probability outputs of models;
* hyperparameter search, serially or on any ``concurrent.futures`` executor
  (a process pool, Dask, MPI):

  - :mod:`~fastopt.train.search_space` -- the dimensions :class:`LogUniform`,
    :class:`Uniform`, :class:`IntUniform` and :class:`Choice`;
  - :mod:`~fastopt.train.search` -- :func:`random_search` and :func:`grid_search`;
  - :mod:`~fastopt.train.asha` -- :func:`asha_search`, random search with
    asynchronous successive halving, and the :class:`Reporter` its objectives
    report to;
  - :mod:`~fastopt.train.trials` -- the :class:`Trial` record of each
    evaluated configuration, and :func:`trials_to_csv`, :func:`trials_to_json`,
    :func:`trials_from_json`;
* :mod:`~fastopt.train.lr_range_test` -- :func:`lr_finder`, the learning-rate
  range test, and its :class:`LRFinderResult`;
* :mod:`~fastopt.train.gradient_check` -- :func:`check_grad`,
  :func:`numerical_gradient`, :func:`numerical_gradient_array`,
  :func:`relative_error`: gradient checks by central differences;
* :mod:`~fastopt.train.clipping` -- :func:`clip_grad_norm` (with
  :func:`total_norm` and :func:`clip_grads_with_norm`): global-norm gradient
  clipping with ``torch.nn.utils.clip_grad_norm_`` semantics.

Parameters are always a list of numpy arrays, updated in place where a
function says so. Bad arguments raise :class:`TypeError` or :class:`ValueError`
naming the argument, and nothing is modified when a call raises.
"""

from fastopt.train.asha import Reporter, asha_search
from fastopt.train.averaging import EMA, ensemble_average
from fastopt.train.clipping import clip_grad_norm, clip_grads_with_norm, total_norm
from fastopt.train.early_stopping import EarlyStopping
from fastopt.train.gradient_check import (
    check_grad,
    numerical_gradient,
    numerical_gradient_array,
    relative_error,
)
from fastopt.train.lr_range_test import LRFinderResult, lr_finder
from fastopt.train.search import grid_search, random_search
from fastopt.train.search_space import Choice, IntUniform, LogUniform, Uniform
from fastopt.train.trials import Trial, trials_from_json, trials_to_csv, trials_to_json

__all__ = [
    "EarlyStopping",
    "EMA",
    "ensemble_average",
    "Uniform",
    "LogUniform",
    "IntUniform",
    "Choice",
    "Trial",
    "trials_to_csv",
    "trials_to_json",
    "trials_from_json",
    "random_search",
    "grid_search",
    "asha_search",
    "Reporter",
    "LRFinderResult",
    "lr_finder",
    "numerical_gradient",
    "numerical_gradient_array",
    "relative_error",
    "check_grad",
    "total_norm",
    "clip_grads_with_norm",
    "clip_grad_norm",
]
