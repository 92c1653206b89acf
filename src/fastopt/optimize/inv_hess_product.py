"""``res.hess_inv`` of L-BFGS-B: scipy's ``LbfgsInvHessProduct``, same attributes.

This module imports scipy (:class:`scipy.sparse.linalg.LinearOperator`); the solver
imports it when it builds a result.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from fastopt import _kernels

__all__ = ["LbfgsInvHessProduct"]


class LbfgsInvHessProduct(LinearOperator):
    r"""The L-BFGS approximate inverse Hessian of the pairs ``sk``, ``yk`` as a
    ``LinearOperator``, as :class:`scipy.optimize.LbfgsInvHessProduct`.

    :math:`H = V_{k}^T \cdots V_1^T\, V_1 \cdots V_k + \dots` built on :math:`H_0 = I`
    (scipy's choice for this operator; the solver itself scales :math:`H_0`), applied with
    the two-loop recursion in fastopt's C kernel (:func:`fastopt._kernels.lbfgs_two_loop`)
    instead of a Python loop.

    Parameters
    ----------
    sk, yk : array_like, shape (n_corrs, n)
        The corrections :math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i`, the
        newest last (scipy passes its ring buffer in storage order; fastopt's solver passes
        them oldest first).

    Attributes
    ----------
    sk, yk : ndarray, shape (n_corrs, n), float64
    n_corrs : int
    rho : ndarray, shape (n_corrs,)
        :math:`1 / s_i^T y_i`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optimize.inv_hess_product import LbfgsInvHessProduct
    >>> H = LbfgsInvHessProduct(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]]))
    >>> H.todense()
    array([[0.5, 0. ],
           [0. , 1. ]])
    """

    def __init__(self, sk, yk):
        sk = np.ascontiguousarray(sk, dtype=np.float64)
        yk = np.ascontiguousarray(yk, dtype=np.float64)
        if sk.shape != yk.shape or sk.ndim != 2:
            raise ValueError("sk and yk must have matching shape, (n_corrs, n)")
        n_corrs, n = sk.shape
        super().__init__(dtype=np.float64, shape=(n, n))
        self.sk = sk
        self.yk = yk
        self.n_corrs = n_corrs
        self.rho = 1.0 / np.einsum("ij,ij->i", sk, yk)

    def _matvec(self, x):
        v = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1))
        if self.n_corrs == 0:
            return v.copy()
        return _kernels.lbfgs_two_loop(v, self.sk, self.yk, self.rho, 1.0, self.n_corrs,
                                       self.n_corrs - 1)

    def _matmat(self, X):
        X = np.asarray(X, dtype=np.float64)
        return np.stack([self._matvec(X[:, j]) for j in range(X.shape[1])], axis=1)

    def _rmatvec(self, x):
        return self._matvec(x)       # symmetric

    def _adjoint(self):
        return self

    def todense(self) -> np.ndarray:
        """The dense ``(n, n)`` matrix (``n`` products: for inspection)."""
        return self._matmat(np.eye(self.shape[0]))
