"""Functional kernels: in-place updates on arrays you own, one C call each.

Each accepts one array or a list of arrays (one multi-tensor C call, work split by total
elements). Use these when your code keeps its own optimizer state; the classes in
:mod:`fastopt.optim` wrap them.
"""

from fastopt._kernels import last_threads_used, planned_threads, sgd_step

__all__ = ["sgd_step", "planned_threads", "last_threads_used"]
