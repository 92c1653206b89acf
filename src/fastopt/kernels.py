"""Functional kernels: in-place updates on arrays you own, one C call each.

Each accepts one array or a list of arrays (one multi-tensor C call, work split by total
elements). Use these when your code keeps its own optimizer state; the classes in
:mod:`fastopt.optim` wrap them.
"""

from fastopt._kernels import (
    adadelta_step,
    adagrad_step,
    adam_step,
    all_finite,
    last_threads_used,
    planned_threads,
    rmsprop_step,
    sgd_step,
)

__all__ = ["sgd_step", "adam_step", "adagrad_step", "rmsprop_step", "adadelta_step",
           "all_finite", "planned_threads", "last_threads_used"]
