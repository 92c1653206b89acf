"""Quasi-Newton minimisation with scipy's interface: ``fastopt.minimize``.

The iterations are orchestrated in Python (they call the user's function); the
vector work runs in fastopt's C kernels (:func:`fastopt._kernels.lbfgs_two_loop`,
``dot``, ``axpy``) and, for BFGS's dense matrix, in scipy's BLAS.

Submodules: :mod:`.bfgs` (dense BFGS), :mod:`.lbfgs` (L-BFGS memory and
two-loop recursion), :mod:`.owlqn` (L1-regularised L-BFGS), :mod:`.linesearch`
(Moré–Thuente and backtracking), :mod:`.result` (status table),
:mod:`.first_order` (``fastopt.optim`` optimizers by name) and
:mod:`.problems` (the test-function collection).
"""
from ._minimize import minimize
from .lbfgs import LbfgsInverseHessian
from .result import STATUS

__all__ = ["minimize", "LbfgsInverseHessian", "STATUS"]
