"""Quasi-Newton minimisation with scipy's interface: ``fastopt.minimize``.

``fastopt.optimize`` mirrors ``scipy.optimize``: the function ``fastopt.minimize`` (also
``fastopt.optimize.minimize``) and the modules behind it.  The iterations are orchestrated
in Python (they call the user's function); the vector work runs in fastopt's C kernels
(:func:`fastopt._kernels.lbfgs_two_loop`, ``dot``, ``axpy``; for BFGS's dense matrix
``symv`` and ``syr2``).  scipy itself is imported on the first ``minimize`` call, not by
``import fastopt``.

Submodules: :mod:`.bfgs` (dense BFGS), :mod:`.lbfgs` (L-BFGS memory and
two-loop recursion), :mod:`.inverse_hessian` (``res.hess_inv`` of L-BFGS),
:mod:`.owlqn` (L1-regularised L-BFGS), :mod:`.lbfgsb` (L-BFGS-B: bounds, with
:mod:`.bounds` parsing them and :mod:`.inv_hess_product` its ``hess_inv``),
:mod:`.bounded_problems` (the boxed test collection), :mod:`.linesearch`
(Moré–Thuente and backtracking), :mod:`.result` (status table),
:mod:`.first_order` (``fastopt.optim`` optimizers by name) and
:mod:`.problems` (the test-function collection).
"""
from __future__ import annotations

from typing import Any

from ._minimize import minimize
from .bounds import parse_bounds
from .lbfgsb import minimize_lbfgsb
from .result import STATUS

__all__ = ["minimize", "minimize_lbfgsb", "parse_bounds", "LbfgsInverseHessian",
           "LbfgsInvHessProduct", "STATUS"]


def __getattr__(name: str) -> Any:
    # both subclass scipy's LinearOperator: imported when first asked for
    if name == "LbfgsInverseHessian":
        from .inverse_hessian import LbfgsInverseHessian
        return LbfgsInverseHessian
    if name == "LbfgsInvHessProduct":
        from .inv_hess_product import LbfgsInvHessProduct
        return LbfgsInvHessProduct
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
