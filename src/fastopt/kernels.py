"""Functional kernels: in-place updates on arrays you own, one C call each.

One ``<family>_step`` per optimizer family of :mod:`fastopt.optim.families` (``sgd_step``,
``adam_step``, ``adagrad_step``, ``rmsprop_step``, ``adadelta_step``, ``nadam_step``,
``lion_step``), each documenting its update rule; plus :func:`all_finite` and the thread
diagnostics. Each accepts one array or a list of arrays (one multi-tensor C call, work split
by total elements). Use these when your code keeps its own optimizer state; the classes in
:mod:`fastopt.optim` wrap them.
"""

from fastopt._kernels import *  # noqa: F403 - the list is the family table's (see __all__)
from fastopt._kernels import __all__ as _exported

__all__ = list(_exported)
